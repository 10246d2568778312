//! Checks that types alone cannot express, reported at the offending value.
//!
//! The model keeps plain fields (no spans) so the compositor reads `output.scale`, not
//! `output.scale.get_ref()`. To point at a bad value we parse the text a second time into a
//! lenient shadow of the model that only records the spans of the values we check; that
//! parse cannot fail where the first one succeeded.

use std::ops::Range;
use std::path::PathBuf;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use crate::error::{ConfigError, Diagnostic, ErrorKind};
use crate::Config;

type Span = Option<Spanned<IgnoredAny>>;

#[derive(Default, Deserialize)]
struct Spans {
    #[serde(default)]
    output: Vec<Spanned<OutputSpans>>,
    explicit_sync: Option<ExplicitSyncSpans>,
    layout: Option<LayoutSpans>,
    lock: Option<LockSpans>,
    limits: Option<LimitsSpans>,
    #[serde(default)]
    binds: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
struct LayoutSpans {
    gaps: Span,
    border_width: Span,
    focused_color: Span,
    unfocused_color: Span,
    master_ratio: Span,
}

#[derive(Deserialize)]
struct LockSpans {
    color: Span,
    abandoned_color: Span,
}

#[derive(Deserialize)]
struct OutputSpans {
    name: Span,
    scale: Span,
    position: Span,
}

#[derive(Deserialize)]
struct LimitsSpans {
    shm_bytes_per_client: Span,
    dmabuf_bytes_per_client: Span,
    buffers_per_client: Span,
    surfaces_per_client: Span,
}

#[derive(Deserialize)]
struct ExplicitSyncSpans {
    acquire_timeout_ms: Span,
    max_held_commits_per_client: Span,
}

/// The first problem in `config`, parsed from `text`.
pub(crate) fn validate(config: &Config, text: &str, path: PathBuf) -> Result<(), ConfigError> {
    let spans: Spans = toml::from_str(text).unwrap_or_default();
    let fail = |span: Range<usize>, kind, message: String, hint: String| {
        Err(ConfigError::Invalid(Box::new(Diagnostic::new(
            path.clone(),
            text,
            span,
            kind,
            message,
            Some(hint),
        ))))
    };
    // The span of a value, else of its whole [[output]] table (which starts at the header).
    let output_span = |i: usize, field: fn(&OutputSpans) -> &Span| {
        spans.output.get(i).map_or(0..0, |o| {
            field(o.get_ref()).as_ref().map_or(o.span(), |v| v.span())
        })
    };

    for (i, output) in config.outputs.iter().enumerate() {
        // Written so that NaN fails too.
        if !(output.scale > 0.0 && output.scale <= 4.0) {
            return fail(
                output_span(i, |o| &o.scale),
                ErrorKind::ScaleOutOfRange,
                format!("output scale {} is out of range", output.scale),
                "scale must be greater than 0 and at most 4, e.g. `scale = 1.5`".to_owned(),
            );
        }
        if let Some(p) = output.position {
            if p.x.unsigned_abs() > crate::MAX_POSITION || p.y.unsigned_abs() > crate::MAX_POSITION
            {
                return fail(
                    output_span(i, |o| &o.position),
                    ErrorKind::PositionOutOfRange,
                    format!("output position {}, {} is out of range", p.x, p.y),
                    format!(
                        "x and y must be between -{max} and {max} (logical pixels from the \
                         top-left corner of the layout), e.g. `position = {{ x = 1920, y = 0 }}`",
                        max = crate::MAX_POSITION
                    ),
                );
            }
        }
        if let Some(first) = config.outputs[..i]
            .iter()
            .position(|o| o.name == output.name)
        {
            let first_line = line_of(text, output_span(first, |o| &o.name).start);
            let (message, hint) = match &output.name {
                Some(name) => (
                    format!("duplicate output name {name:?}"),
                    format!(
                        "an [[output]] named {name:?} is already defined on line {first_line}; \
                         merge the two tables"
                    ),
                ),
                None => (
                    "a second [[output]] without a `name`".to_owned(),
                    format!(
                        "the [[output]] without a name on line {first_line} already applies to \
                         every output no named entry matches; give this one a `name` or merge \
                         the two tables"
                    ),
                ),
            };
            return fail(
                output_span(i, |o| &o.name),
                ErrorKind::DuplicateOutputName,
                message,
                hint,
            );
        }
    }

    let layout = &config.layout;
    let layout_span = |field: fn(&LayoutSpans) -> &Span| {
        spans
            .layout
            .as_ref()
            .and_then(|l| field(l).as_ref())
            .map_or(0..0, |s| s.span())
    };
    if layout.gaps > 200 {
        return fail(
            layout_span(|l| &l.gaps),
            ErrorKind::LayoutOutOfRange,
            format!("gaps = {} is more than 200 pixels", layout.gaps),
            "gaps is the space between and around tiles, e.g. `gaps = 8`".to_owned(),
        );
    }
    if layout.border_width > 50 {
        return fail(
            layout_span(|l| &l.border_width),
            ErrorKind::LayoutOutOfRange,
            format!(
                "border_width = {} is more than 50 pixels",
                layout.border_width
            ),
            "border_width is drawn inside each tile, e.g. `border_width = 2`".to_owned(),
        );
    }
    if !(layout.master_ratio >= 0.1 && layout.master_ratio <= 0.9) {
        return fail(
            layout_span(|l| &l.master_ratio),
            ErrorKind::LayoutOutOfRange,
            format!("master_ratio = {} is out of range", layout.master_ratio),
            "master_ratio is the master window's share of the width, from 0.1 to 0.9, e.g. \
             `master_ratio = 0.6`"
                .to_owned(),
        );
    }
    for (value, field) in [
        (
            &layout.focused_color,
            (|l| &l.focused_color) as fn(&LayoutSpans) -> &Span,
        ),
        (&layout.unfocused_color, |l| &l.unfocused_color),
    ] {
        if crate::parse_color(value).is_none() {
            return fail(
                layout_span(field),
                ErrorKind::InvalidValue,
                format!("{value:?} is not a colour"),
                "colours are written \"#rrggbb\" in hexadecimal, e.g. `\"#4c7899\"`".to_owned(),
            );
        }
    }
    let lock_span = |field: fn(&LockSpans) -> &Span| {
        spans
            .lock
            .as_ref()
            .and_then(|l| field(l).as_ref())
            .map_or(0..0, |v| v.span())
    };
    for (value, field) in [
        (
            &config.lock.color,
            (|l| &l.color) as fn(&LockSpans) -> &Span,
        ),
        (&config.lock.abandoned_color, |l| &l.abandoned_color),
    ] {
        if crate::parse_color(value).is_none() {
            return fail(
                lock_span(field),
                ErrorKind::InvalidValue,
                format!("{value:?} is not a colour"),
                "colours are written \"#rrggbb\" in hexadecimal, e.g. `\"#000000\"`".to_owned(),
            );
        }
    }
    for (keys, spec) in &config.binds {
        let key_span = spans
            .binds
            .keys()
            .find(|k| k.get_ref() == keys)
            .map_or(0..0, |k| k.span());
        if let Err(err) = crate::KeyCombo::parse(keys) {
            return fail(
                key_span,
                ErrorKind::InvalidKeyCombo,
                err.message,
                "bindings are written `\"Super+Shift+Q\" = \"close\"`: modifiers Super, Ctrl, \
                 Alt, Shift, then an xkb key name (Return, q, 1, Left, space)"
                    .to_owned(),
            );
        }
        let (action, _) = spec.parts();
        if let Err(err) = crate::Action::parse(action) {
            let value_span = spans
                .binds
                .iter()
                .find(|(k, _)| k.get_ref() == keys)
                .map_or(0..0, |(_, v)| v.span());
            return fail(
                value_span,
                ErrorKind::InvalidAction,
                err.message,
                "an action is words like `\"workspace 2\"` or `\"spawn foot\"`; the README \
                 lists them all, and `\"none\"` removes a default binding"
                    .to_owned(),
            );
        }
    }

    if config.explicit_sync.acquire_timeout_ms == 0 {
        let span = spans
            .explicit_sync
            .as_ref()
            .and_then(|e| e.acquire_timeout_ms.as_ref())
            .map_or(0..0, |s| s.span());
        return fail(
            span,
            ErrorKind::ZeroTimeout,
            "acquire_timeout_ms must be at least 1".to_owned(),
            "an acquire point still unsignalled after this long is reported; use e.g. \
             `acquire_timeout_ms = 2000`, or `enabled = false` to turn explicit sync off"
                .to_owned(),
        );
    }
    if config.explicit_sync.max_held_commits_per_client == 0 {
        let span = spans
            .explicit_sync
            .as_ref()
            .and_then(|e| e.max_held_commits_per_client.as_ref())
            .map_or(0..0, |s| s.span());
        return fail(
            span,
            ErrorKind::InvalidValue,
            "max_held_commits_per_client must be at least 1".to_owned(),
            "a client may have this many commits waiting for acquire points; use e.g. \
             `max_held_commits_per_client = 64`"
                .to_owned(),
        );
    }
    let limits = &config.limits;
    let limit_span = |field: fn(&LimitsSpans) -> &Span| {
        spans
            .limits
            .as_ref()
            .and_then(|l| field(l).as_ref())
            .map_or(0..0, |s| s.span())
    };
    for (bytes, key, field) in [
        (
            limits.shm_bytes_per_client,
            "shm_bytes_per_client",
            (|l| &l.shm_bytes_per_client) as fn(&LimitsSpans) -> &Span,
        ),
        (
            limits.dmabuf_bytes_per_client,
            "dmabuf_bytes_per_client",
            |l| &l.dmabuf_bytes_per_client,
        ),
    ] {
        if bytes.bytes() < MIN_BYTE_LIMIT {
            return fail(
                limit_span(field),
                ErrorKind::InvalidValue,
                format!("{key} = {bytes} is too small to show a window"),
                format!(
                    "use at least 1 MiB (a 512×512 window takes 1 MiB per buffer), e.g. \
                     `{key} = \"4 GiB\"`"
                ),
            );
        }
    }
    for (count, key, field) in [
        (
            limits.buffers_per_client,
            "buffers_per_client",
            (|l| &l.buffers_per_client) as fn(&LimitsSpans) -> &Span,
        ),
        (limits.surfaces_per_client, "surfaces_per_client", |l| {
            &l.surfaces_per_client
        }),
    ] {
        if count == 0 {
            return fail(
                limit_span(field),
                ErrorKind::InvalidValue,
                format!("{key} must be at least 1"),
                format!("a client needs at least one to show anything; e.g. `{key} = 16384`"),
            );
        }
    }
    Ok(())
}

/// The smallest byte limit accepted: below it no real window fits.
const MIN_BYTE_LIMIT: u64 = 1 << 20;

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
