//! Every kind of error: its location (line, column), message and hint.

use std::path::Path;

use lockstep_config::{Config, Diagnostic, ErrorKind};

fn diag(text: &str) -> Diagnostic {
    match Config::parse(text, Path::new("test.toml")) {
        Ok(config) => panic!("parsed, expected an error: {config:?}"),
        Err(err) => err.diagnostic().expect("an Invalid error").clone(),
    }
}

/// Asserts kind, line, column, message and hint of the error `text` produces.
#[track_caller]
fn check(text: &str, kind: ErrorKind, (line, column): (usize, usize), message: &str, hint: &str) {
    let d = diag(text);
    assert_eq!(d.kind, kind, "{d}");
    assert_eq!((d.line, d.column), (line, column), "{d}");
    assert_eq!(d.message, message, "{d}");
    assert_eq!(d.hint.as_deref().unwrap_or(""), hint, "{d}");
}

const OUTPUT_KEYS: &str = "`name`, `mode`, `scale`, `position`, `enabled`";
const TABLES: &str =
    "`[[output]]`, `[keyboard]`, `[explicit_sync]`, `[cursor]`, `[layout]`, `[lock]`, `[xwayland]`, `[render]`, `[limits]`, `[binds]`";

#[test]
fn unknown_key_suggests_the_closest() {
    check(
        "[[output]]\nname = \"a\"\nscal = 2.0\n",
        ErrorKind::UnknownKey,
        (3, 1),
        "unknown key `scal` in [[output]]",
        &format!("did you mean `scale`? valid keys in [[output]]: {OUTPUT_KEYS}"),
    );
    check(
        "[explicit_sync]\n  acquire_timeout = 10\n",
        ErrorKind::UnknownKey,
        (2, 3),
        "unknown key `acquire_timeout` in [explicit_sync]",
        "did you mean `acquire_timeout_ms`? valid keys in [explicit_sync]: `enabled`, \
         `acquire_timeout_ms`, `max_held_commits_per_client`, `device`, `validation`",
    );
}

#[test]
fn unknown_key_without_a_close_match_lists_valid_keys() {
    check(
        "[cursor]\ncolour = \"red\"\n",
        ErrorKind::UnknownKey,
        (2, 1),
        "unknown key `colour` in [cursor]",
        "valid keys in [cursor]: `theme`, `size`",
    );
    check(
        "[[output]]\nposition = { x = 1, y = 2, z = 3 }\n",
        ErrorKind::UnknownKey,
        (2, 28),
        "unknown key `z` in `position`",
        "valid keys in `position`: `x`, `y`",
    );
}

#[test]
fn unknown_key_in_the_wrong_table_says_where_it_belongs() {
    check(
        "variant = \"dvorak\"\n",
        ErrorKind::UnknownKey,
        (1, 1),
        "unknown section or key `variant` at the top level",
        &format!("`variant` belongs in [keyboard]; valid top-level tables: {TABLES}"),
    );
    check(
        "[keyboard]\nscale = 2\n",
        ErrorKind::UnknownKey,
        (2, 1),
        "unknown key `scale` in [keyboard]",
        "`scale` belongs in [[output]]; valid keys in [keyboard]: `layout`, `variant`, \
         `options`, `model`, `repeat_rate`, `repeat_delay`",
    );
}

#[test]
fn unknown_table() {
    check(
        "# comment\n[keybaord]\nlayout = \"de\"\n",
        ErrorKind::UnknownKey,
        (2, 2),
        "unknown section or key `keybaord` at the top level",
        &format!("did you mean `[keyboard]`? valid top-level tables: {TABLES}"),
    );
    // Sections we do not have are errors too, not ignored.
    check(
        "[headless]\n",
        ErrorKind::UnknownKey,
        (1, 2),
        "unknown section or key `headless` at the top level",
        &format!("valid top-level tables: {TABLES}"),
    );
}

#[test]
fn unknown_dotted_key_points_at_the_key() {
    check(
        "keyboard.layuot = \"de\"\n",
        ErrorKind::UnknownKey,
        (1, 10),
        "unknown key `layuot` in [keyboard]",
        "did you mean `layout`? valid keys in [keyboard]: `layout`, `variant`, `options`, \
         `model`, `repeat_rate`, `repeat_delay`",
    );
}

#[test]
fn wrong_type_names_key_and_expected_type() {
    check(
        "[[output]]\nscale = \"2\"\n",
        ErrorKind::WrongType,
        (2, 9),
        "wrong type for `scale`: expected a number, found string \"2\"",
        "`scale` takes a number greater than 0 and at most 4, e.g. `scale = 1.5`",
    );
    check(
        "[[output]]\nposition = { x = 1, y = \"a\" }\n",
        ErrorKind::WrongType,
        (2, 25),
        "wrong type for `y`: expected a whole number, found string \"a\"",
        "`y` takes an integer (logical pixels), e.g. `position = { x = 0, y = 1080 }`",
    );
    check(
        "[explicit_sync]\nenabled = \"yes\"\n",
        ErrorKind::WrongType,
        (2, 11),
        "wrong type for `enabled`: expected true or false, found string \"yes\"",
        "`enabled` takes true or false, e.g. `enabled = false`",
    );
    check(
        "[keyboard]\nrepeat_rate = 2.5\n",
        ErrorKind::WrongType,
        (2, 15),
        "wrong type for `repeat_rate`: expected a non-negative whole number, found floating \
         point `2.5`",
        "`repeat_rate` takes a whole number of repeats per second (0 disables repeat), e.g. \
         `repeat_rate = 25`",
    );
    check(
        "keyboard = 5\n",
        ErrorKind::WrongType,
        (1, 12),
        "wrong type for `keyboard`: expected a table, found integer `5`",
        "`keyboard` takes a `[keyboard]` table",
    );
}

#[test]
fn wrong_brackets() {
    check(
        "[output]\nname = \"a\"\n",
        ErrorKind::WrongType,
        (1, 1),
        "wrong type: expected an array, found a table",
        "write `[[output]]`, with double brackets, for each output",
    );
    check(
        "[[keyboard]]\n",
        ErrorKind::WrongType,
        (1, 1),
        "`[[keyboard]]` is an array of tables, but `keyboard` is one table",
        "only [[output]] takes double brackets; write `[keyboard]` for a single table",
    );
}

#[test]
fn invalid_value() {
    check(
        "[cursor]\nsize = -24\n",
        ErrorKind::InvalidValue,
        (2, 8),
        "invalid value for `size`: expected a non-negative whole number, found integer `-24`",
        "`size` takes a whole number of pixels, e.g. `size = 24`",
    );
}

#[test]
fn missing_key() {
    check(
        "[[output]]\nposition = { x = 1 }\n",
        ErrorKind::MissingKey,
        (2, 12),
        "missing key `y`",
        "add `y`: an integer (logical pixels), e.g. `position = { x = 0, y = 1080 }`",
    );
}

#[test]
fn invalid_mode_shows_the_expected_form() {
    let hint = "expected WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. 1920x1080@60";
    check(
        "[[output]]\nmode = \"1920x1080@sixty\"\n",
        ErrorKind::InvalidMode,
        (2, 8),
        "invalid mode \"1920x1080@sixty\": refresh rate `sixty` is not a number",
        hint,
    );
    check(
        "[[output]]\nmode = \"1920*1080\"\n",
        ErrorKind::InvalidMode,
        (2, 8),
        "invalid mode \"1920*1080\": missing `x` between width and height",
        hint,
    );
    check(
        "[[output]]\nmode = 1080\n",
        ErrorKind::WrongType,
        (2, 8),
        "wrong type for `mode`: expected a mode string such as \"1920x1080@60\", found integer \
         `1080`",
        "`mode` takes a string WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. `mode = \"1920x1080@60\"`",
    );
}

#[test]
fn syntax_errors() {
    check(
        "[keyboard]\nlayout = us\n",
        ErrorKind::Syntax,
        (2, 10),
        "invalid string; expected `\"`, `'`",
        "strings must be quoted, e.g. `layout = \"us\"`",
    );
    check(
        "[keyboard]\nlayout = \"a\"\nlayout = \"b\"\n",
        ErrorKind::Syntax,
        (3, 1),
        "duplicate key `layout` in table `keyboard`",
        "each key may appear once per table; remove one of them",
    );
    check(
        "[keyboard]\n[cursor]\n[keyboard]\n",
        ErrorKind::Syntax,
        (3, 1),
        "invalid table header; duplicate key `keyboard` in document root",
        "a [table] may appear once; only [[output]] (double brackets) repeats",
    );
    check(
        "[keyboard\n",
        ErrorKind::Syntax,
        (1, 10),
        "invalid table header; expected `.`, `]`",
        "table headers look like `[keyboard]`, or `[[output]]` for one of several outputs",
    );
    check(
        "[keyboard]\nlayout\n",
        ErrorKind::Syntax,
        (2, 7),
        "expected `.`, `=`",
        "keys and values are written `key = value`",
    );
}

#[test]
fn scale_out_of_range() {
    let hint = "scale must be greater than 0 and at most 4, e.g. `scale = 1.5`";
    for (value, shown) in [
        ("0", "0"),
        ("-1", "-1"),
        ("4.5", "4.5"),
        ("nan", "NaN"),
        ("inf", "inf"),
    ] {
        let text = format!("[[output]]\nname = \"a\"\n\nscale = {value}\n");
        let message = format!("output scale {shown} is out of range");
        check(&text, ErrorKind::ScaleOutOfRange, (4, 9), &message, hint);
    }
    // The limits themselves are fine.
    Config::parse(
        "[[output]]\nscale = 4\n[[output]]\nname = \"b\"\nscale = 0.25",
        Path::new("t"),
    )
    .unwrap();
}

#[test]
fn output_position_near_the_i32_limits_is_refused() {
    // A position near i32::MAX used to wrap an addition in the pointer clamp, and
    // f64::clamp then panicked on the first pointer motion.
    let hint = "x and y must be between -1048576 and 1048576 (logical pixels from the top-left \
                corner of the layout), e.g. `position = { x = 1920, y = 0 }`";
    for (value, shown) in [
        ("{ x = 2147483000, y = 0 }", "2147483000, 0"),
        ("{ x = 0, y = -2147483648 }", "0, -2147483648"),
        ("{ x = 1048577, y = 0 }", "1048577, 0"),
    ] {
        let text = format!("[[output]]\nname = \"a\"\nposition = {value}\n");
        let message = format!("output position {shown} is out of range");
        check(
            &text,
            ErrorKind::PositionOutOfRange,
            (3, 12),
            &message,
            hint,
        );
    }
    Config::parse(
        "[[output]]\nposition = { x = 1048576, y = -1048576 }",
        Path::new("t"),
    )
    .unwrap();
}

#[test]
fn zero_timeout() {
    check(
        "[explicit_sync]\nenabled = true\nacquire_timeout_ms = 0\n",
        ErrorKind::ZeroTimeout,
        (3, 22),
        "acquire_timeout_ms must be at least 1",
        "an acquire point still unsignalled after this long is reported; use e.g. \
         `acquire_timeout_ms = 2000`, or `enabled = false` to turn explicit sync off",
    );
    check(
        "explicit_sync = { acquire_timeout_ms = 0 }\n",
        ErrorKind::ZeroTimeout,
        (1, 40),
        "acquire_timeout_ms must be at least 1",
        "an acquire point still unsignalled after this long is reported; use e.g. \
         `acquire_timeout_ms = 2000`, or `enabled = false` to turn explicit sync off",
    );
}

#[test]
fn zero_held_commit_cap() {
    check(
        "[explicit_sync]\nmax_held_commits_per_client = 0\n",
        ErrorKind::InvalidValue,
        (2, 31),
        "max_held_commits_per_client must be at least 1",
        "a client may have this many commits waiting for acquire points; use e.g. \
         `max_held_commits_per_client = 64`",
    );
}

#[test]
fn duplicate_output_names() {
    check(
        "[[output]]\nname = \"HEADLESS-1\"\n\n[[output]]\nname = \"HEADLESS-2\"\n\n\
         [[output]]\nscale = 2\nname = \"HEADLESS-1\"\n",
        ErrorKind::DuplicateOutputName,
        (9, 8),
        "duplicate output name \"HEADLESS-1\"",
        "an [[output]] named \"HEADLESS-1\" is already defined on line 2; merge the two tables",
    );
    check(
        "[[output]]\nscale = 2\n\n[[output]]\nenabled = false\n",
        ErrorKind::DuplicateOutputName,
        (4, 1),
        "a second [[output]] without a `name`",
        "the [[output]] without a name on line 1 already applies to every output no named \
         entry matches; give this one a `name` or merge the two tables",
    );
}

#[test]
fn rendering() {
    let err = Config::parse(
        "[keyboard]\nlayout = \"de\"\nrepeat_rate = \"fast\"\n",
        Path::new("/home/me/.config/lockstep/config.toml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/home/me/.config/lockstep/config.toml:3:15: error: wrong type for `repeat_rate`: \
         expected a non-negative whole number, found string \"fast\"\n  \
         |\n\
         3 | repeat_rate = \"fast\"\n  \
         |               ^^^^^^\n  \
         = hint: `repeat_rate` takes a whole number of repeats per second (0 disables \
         repeat), e.g. `repeat_rate = 25`"
    );
    let d = err.diagnostic().unwrap();
    assert_eq!(d.source_line, "repeat_rate = \"fast\"");
    assert_eq!(
        d.summary(),
        "/home/me/.config/lockstep/config.toml:3:15: error: wrong type for `repeat_rate`: \
         expected a non-negative whole number, found string \"fast\""
    );
}

#[test]
fn rendering_without_hint_and_at_end_of_file() {
    let err = Config::parse("[keyboard]\nlayout = \"a", Path::new("c.toml")).unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!((d.kind, d.line, d.column), (ErrorKind::Syntax, 2, 12));
    assert!(err.to_string().starts_with(
        "c.toml:2:12: error: invalid basic string\n  |\n2 | layout = \"a\n  |            ^\n"
    ));
    let err = Config::parse("[keyboard]\r\nmodel\r\n", Path::new("c.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.toml:2:6: error: expected `.`, `=`\n  |\n2 | model\n  |      ^\n  \
         = hint: keys and values are written `key = value`"
    );
}

#[test]
fn bad_binding_keys_and_actions_are_shown_where_they_are() {
    check(
        "[binds]\n\"Hyper+Q\" = \"close\"\n",
        ErrorKind::InvalidKeyCombo,
        (2, 1),
        "unknown modifier `hyper` in `Hyper+Q`; modifiers are Super, Ctrl, Alt and Shift",
        "bindings are written `\"Super+Shift+Q\" = \"close\"`: modifiers Super, Ctrl, Alt, \
         Shift, then an xkb key name (Return, q, 1, Left, space)",
    );
    check(
        "[binds]\n\"Super+Q\" = \"fulscreen\"\n",
        ErrorKind::InvalidAction,
        (2, 13),
        "unknown action `fulscreen`; did you mean `fullscreen`? actions are: spawn, spawn-sh, terminal, \
         launcher, close, focus, move, workspace, move-to-workspace, move-workspace-to-output, \
         resize, toggle-floating, fullscreen, maximize, minimize, unminimize, focus-window, \
         reload-config, quit, screenshot, power-outputs, none",
        "an action is words like `\"workspace 2\"` or `\"spawn foot\"`; the README lists them \
         all, and `\"none\"` removes a default binding",
    );
    check(
        "[binds]\n\"Super+1\" = { action = \"workspace\" }\n",
        ErrorKind::InvalidAction,
        (2, 13),
        "`workspace` takes one argument: a workspace number or name, e.g. `workspace 2`",
        "an action is words like `\"workspace 2\"` or `\"spawn foot\"`; the README lists them \
         all, and `\"none\"` removes a default binding",
    );
}

#[test]
fn layout_values_out_of_range() {
    check(
        "[layout]\nmaster_ratio = 1.5\n",
        ErrorKind::LayoutOutOfRange,
        (2, 16),
        "master_ratio = 1.5 is out of range",
        "master_ratio is the master window's share of the width, from 0.1 to 0.9, e.g. \
         `master_ratio = 0.6`",
    );
    check(
        "[layout]\nfocused_color = \"blue\"\n",
        ErrorKind::InvalidValue,
        (2, 17),
        "\"blue\" is not a colour",
        "colours are written \"#rrggbb\" in hexadecimal, e.g. `\"#4c7899\"`",
    );
}

#[test]
fn unknown_renderer() {
    check(
        "[render]\nrenderer = \"vulkan\"\n",
        ErrorKind::InvalidValue,
        (2, 12),
        "invalid value for `renderer`: expected one of `auto`, `gles`, `pixman`, found `vulkan`",
        "`renderer` takes \"auto\", \"gles\" or \"pixman\", e.g. `renderer = \"pixman\"`",
    );
}

#[test]
fn limits_take_sizes_with_units_and_refuse_tiny_ones() {
    let config = Config::parse(
        "[limits]\nshm_bytes_per_client = \"512 MiB\"\ndmabuf_bytes_per_client = 2147483648\n\
         buffers_per_client = 10\nsurfaces_per_client = 3\n",
        Path::new("t"),
    )
    .unwrap();
    assert_eq!(config.limits.shm_bytes_per_client.bytes(), 512 << 20);
    assert_eq!(config.limits.dmabuf_bytes_per_client.bytes(), 2 << 30);
    assert_eq!(
        (
            config.limits.buffers_per_client,
            config.limits.surfaces_per_client
        ),
        (10, 3)
    );
    check(
        "[limits]\nshm_bytes_per_client = \"4 KiB\"\n",
        ErrorKind::InvalidValue,
        (2, 24),
        "shm_bytes_per_client = 4 KiB is too small to show a window",
        "use at least 1 MiB (a 512×512 window takes 1 MiB per buffer), e.g. \
         `shm_bytes_per_client = \"4 GiB\"`",
    );
    check(
        "[limits]\nsurfaces_per_client = 0\n",
        ErrorKind::InvalidValue,
        (2, 23),
        "surfaces_per_client must be at least 1",
        "a client needs at least one to show anything; e.g. `surfaces_per_client = 16384`",
    );
    let err = Config::parse(
        "[limits]\ndmabuf_bytes_per_client = \"4 GB\"\n",
        Path::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown unit \"GB\""), "{err}");
}
