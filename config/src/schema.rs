//! What each table accepts, in words, for hints.
//!
//! serde tells us which keys a table accepts but not what they mean; this table adds, per
//! key, what it takes with an example. A test in this module checks that its key lists are
//! exactly the ones serde derives from the model, so the two cannot drift apart.

/// One table of the file.
pub(crate) struct Section {
    /// How the table is named in messages: `[[output]]`, `[keyboard]`, `position`.
    pub name: &'static str,
    /// Its keys, in declaration order, with what each takes.
    pub keys: &'static [(&'static str, &'static str)],
}

pub(crate) const TOP_LEVEL: &str = "the top level";

pub(crate) const SECTIONS: &[Section] = &[
    Section {
        name: TOP_LEVEL,
        keys: &[
            (
                "output",
                "one `[[output]]` table per output (note the double brackets)",
            ),
            ("keyboard", "a `[keyboard]` table"),
            ("explicit_sync", "an `[explicit_sync]` table"),
            ("cursor", "a `[cursor]` table"),
            ("layout", "a `[layout]` table"),
            ("lock", "a `[lock]` table"),
            ("xwayland", "an `[xwayland]` table"),
            ("render", "a `[render]` table"),
            ("limits", "a `[limits]` table"),
            ("binds", "a `[binds]` table of \"Keys\" = \"action\""),
        ],
    },
    Section {
        name: "[[output]]",
        keys: &[
            (
                "name",
                "a string naming the output, e.g. `name = \"HEADLESS-1\"`",
            ),
            (
                "mode",
                "a string WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. `mode = \"1920x1080@60\"`",
            ),
            (
                "scale",
                "a number greater than 0 and at most 4, e.g. `scale = 1.5`",
            ),
            (
                "position",
                "a table with integers x and y, e.g. `position = { x = 1920, y = 0 }`",
            ),
            ("enabled", "true or false, e.g. `enabled = false`"),
        ],
    },
    Section {
        name: "`position`",
        keys: &[
            (
                "x",
                "an integer (logical pixels), e.g. `position = { x = 1920, y = 0 }`",
            ),
            (
                "y",
                "an integer (logical pixels), e.g. `position = { x = 0, y = 1080 }`",
            ),
        ],
    },
    Section {
        name: "[keyboard]",
        keys: &[
            (
                "layout",
                "a string of xkb layouts, e.g. `layout = \"us,de\"`",
            ),
            (
                "variant",
                "a string of xkb variants, e.g. `variant = \"dvorak\"`",
            ),
            (
                "options",
                "a string of xkb options, e.g. `options = \"ctrl:nocaps\"`",
            ),
            (
                "model",
                "a string naming an xkb model, e.g. `model = \"pc105\"`",
            ),
            (
                "repeat_rate",
                "a whole number of repeats per second (0 disables repeat), e.g. `repeat_rate = 25`",
            ),
            (
                "repeat_delay",
                "a whole number of milliseconds, e.g. `repeat_delay = 600`",
            ),
        ],
    },
    Section {
        name: "[explicit_sync]",
        keys: &[
            ("enabled", "true or false, e.g. `enabled = false`"),
            (
                "acquire_timeout_ms",
                "a whole number of milliseconds, at least 1, e.g. `acquire_timeout_ms = 2000`",
            ),
            (
                "max_held_commits_per_client",
                "a whole number of commits, at least 1, e.g. `max_held_commits_per_client = 64`",
            ),
            (
                "device",
                "a path to a DRM node, e.g. `device = \"/dev/dri/renderD128\"`",
            ),
            ("validation", "true or false, e.g. `validation = true`"),
        ],
    },
    Section {
        name: "[limits]",
        keys: &[
            (
                "shm_bytes_per_client",
                "a size, at least 1 MiB, e.g. `shm_bytes_per_client = \"4 GiB\"`",
            ),
            (
                "dmabuf_bytes_per_client",
                "a size, at least 1 MiB, e.g. `dmabuf_bytes_per_client = \"4 GiB\"`",
            ),
            (
                "buffers_per_client",
                "a whole number of buffers, at least 1, e.g. `buffers_per_client = 16384`",
            ),
            (
                "surfaces_per_client",
                "a whole number of surfaces, at least 1, e.g. `surfaces_per_client = 16384`",
            ),
        ],
    },
    Section {
        name: "[cursor]",
        keys: &[
            (
                "theme",
                "a string naming an XCursor theme, e.g. `theme = \"Adwaita\"`",
            ),
            ("size", "a whole number of pixels, e.g. `size = 24`"),
        ],
    },
    Section {
        name: "[layout]",
        keys: &[
            (
                "gaps",
                "a whole number of pixels, 0 to 200, e.g. `gaps = 8`",
            ),
            (
                "border_width",
                "a whole number of pixels, 0 to 50, e.g. `border_width = 2`",
            ),
            (
                "focused_color",
                "a colour \"#rrggbb\", e.g. `focused_color = \"#4c7899\"`",
            ),
            (
                "unfocused_color",
                "a colour \"#rrggbb\", e.g. `unfocused_color = \"#333333\"`",
            ),
            (
                "master_ratio",
                "a number from 0.1 to 0.9, e.g. `master_ratio = 0.6`",
            ),
            (
                "new_windows",
                "\"tiled\" or \"floating\", e.g. `new_windows = \"floating\"`",
            ),
        ],
    },
    Section {
        name: "[lock]",
        keys: &[
            ("color", "a colour \"#rrggbb\", e.g. `color = \"#000000\"`"),
            (
                "abandoned_color",
                "a colour \"#rrggbb\", e.g. `abandoned_color = \"#7f1010\"`",
            ),
        ],
    },
    Section {
        name: "[xwayland]",
        keys: &[("enabled", "true or false, e.g. `enabled = false`")],
    },
    Section {
        name: "[render]",
        keys: &[(
            "renderer",
            "\"auto\", \"gles\" or \"pixman\", e.g. `renderer = \"pixman\"`",
        )],
    },
];

/// The section whose keys are exactly `keys` (serde's list of expected fields).
pub(crate) fn section_with_keys(keys: &[String]) -> Option<&'static Section> {
    SECTIONS
        .iter()
        .find(|s| s.keys.len() == keys.len() && s.keys.iter().zip(keys).all(|((k, _), e)| k == e))
}

/// Sections other than `except` that have a key called `key`.
pub(crate) fn sections_with_key(key: &str, except: Option<&str>) -> Vec<&'static str> {
    SECTIONS
        .iter()
        .filter(|s| Some(s.name) != except && s.keys.iter().any(|(k, _)| *k == key))
        .map(|s| s.name)
        .collect()
}

/// What `key` takes, from the first section that has it (keys shared between sections,
/// like `enabled`, take the same thing everywhere).
pub(crate) fn describe(key: &str) -> Option<&'static str> {
    SECTIONS
        .iter()
        .flat_map(|s| s.keys)
        .find(|(k, _)| *k == key)
        .map(|(_, d)| *d)
}

/// How to write key `key` of `section` in a message: top-level keys are tables.
pub(crate) fn display_key(section: &str, key: &str) -> String {
    if section != TOP_LEVEL {
        return format!("`{key}`");
    }
    match key {
        "output" => "`[[output]]`".to_owned(),
        _ => format!("`[{key}]`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's list of keys for a table, read from the error an unknown key produces.
    fn serde_keys(doc: &str) -> Vec<String> {
        let err = toml::from_str::<crate::Config>(doc).unwrap_err();
        let msg = err.message();
        let (_, expected) = msg.split_once("expected").expect(msg);
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn key_lists_match_the_model() {
        let docs = [
            (TOP_LEVEL, "bogus = 1"),
            ("[[output]]", "[[output]]\nbogus = 1"),
            ("`position`", "[[output]]\nposition = { bogus = 1 }"),
            ("[keyboard]", "[keyboard]\nbogus = 1"),
            ("[explicit_sync]", "[explicit_sync]\nbogus = 1"),
            ("[cursor]", "[cursor]\nbogus = 1"),
            ("[layout]", "[layout]\nbogus = 1"),
            ("[lock]", "[lock]\nbogus = 1"),
            ("[xwayland]", "[xwayland]\nbogus = 1"),
            ("[render]", "[render]\nbogus = 1"),
            ("[limits]", "[limits]\nbogus = 1"),
        ];
        assert_eq!(docs.len(), SECTIONS.len());
        for (name, doc) in docs {
            let keys = serde_keys(doc);
            let section = section_with_keys(&keys).unwrap_or_else(|| panic!("{keys:?}"));
            assert_eq!(section.name, name);
        }
    }
}
