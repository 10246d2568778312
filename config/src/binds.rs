//! Key bindings and the action grammar they share with `lockstep msg action`.
//!
//! # Why the action grammar lives here
//!
//! A binding's right-hand side is an action written as words (`"workspace 3"`,
//! `"spawn foot -e htop"`). The config must reject a misspelt action at its line and column
//! when the file is loaded, not when the key is pressed, so the parser of those words is
//! part of the config crate; the compositor's `action.rs` re-exports [`Action`] and runs it,
//! and its IPC parses the same words. One grammar, documented once (the README's action
//! table), and every binding is an IPC call away from being tested.
//!
//! # The `[binds]` table
//!
//! Keys are `Modifier+...+Key` with modifiers `Super`, `Ctrl`, `Alt`, `Shift` (any order,
//! case-insensitive; `Mod4`/`Logo` = Super, `Control` = Ctrl, `Mod1` = Alt) and an xkb keysym
//! name as the last part (`Return`, `q`, `1`, `Left`, `XF86AudioRaiseVolume`). Letters match
//! whatever case the keymap produces and, like sway's `bindsym`, also the key's Latin letter
//! when another layout (Cyrillic, Greek) is active. Values are an action, or a table with
//! `action` and `allow_when_locked`. Entries replace the default binding of the same keys;
//! `"none"` removes one.
//!
//! ```toml
//! [binds]
//! "Super+Return" = "spawn alacritty"
//! "Super+Shift+Return" = "terminal"
//! "Super+D" = "none"
//! "XF86AudioMute" = { action = "spawn wpctl set-mute @DEFAULT_AUDIO_SINK@ toggle", allow_when_locked = true }
//! ```

use std::{fmt, path::PathBuf};

use serde::Deserialize;

/// A direction for focus and move actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Left.
    Left,
    /// Right.
    Right,
    /// Up.
    Up,
    /// Down.
    Down,
}

/// Which side of a window `resize` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeAxis {
    /// Its width.
    Width,
    /// Its height.
    Height,
}

/// The unit of a `resize` amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeUnit {
    /// Logical pixels.
    Px,
    /// Percentage points of the output's working area (width or height).
    Ppt,
}

/// A `resize` request: grow or shrink one side by an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Resize {
    /// Grow (`true`) or shrink.
    pub grow: bool,
    /// Which side.
    pub axis: ResizeAxis,
    /// How much (default 10).
    pub amount: u32,
    /// In what; `None` means like sway: px for a floating window, ppt for a tiled one.
    pub unit: Option<ResizeUnit>,
}

/// The amount `resize` and `move` use when none is given.
pub const DEFAULT_RESIZE_AMOUNT: u32 = 10;

/// The largest amount `resize` and `move` take (more than any output is wide).
pub const MAX_AMOUNT: u32 = 100_000;

/// Everything a user can ask the compositor to do, from a key binding or IPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `spawn PROGRAM ARGS...`: start a program (split on whitespace, no shell).
    Spawn(Vec<String>),
    /// `spawn-sh COMMAND`: start `sh -c COMMAND`.
    SpawnSh(String),
    /// `terminal`: foot, else weston-terminal, else `$TERMINAL`.
    Terminal,
    /// `launcher`: fuzzel, when installed.
    Launcher,
    /// `close`: ask the focused window to close.
    Close,
    /// `focus left|right|up|down`: focus the nearest window that way (or the next output).
    Focus(Direction),
    /// `move left|right|up|down [N [px]]`: move the focused window that way: a tiled one
    /// swaps with its neighbour, a floating one moves by N px (default 64).
    Move(Direction, Option<u32>),
    /// `workspace N|NAME`: show workspace N (or a named one) on the active output.
    Workspace(String),
    /// `move-to-workspace N|NAME`: move the focused window there.
    MoveToWorkspace(String),
    /// `move-workspace-to-output NAME`: move the shown workspace's windows to that output.
    MoveWorkspaceToOutput(String),
    /// `resize grow|shrink width|height [N [px|ppt]]` (sway's grammar; `resize grow` alone
    /// is `resize grow width`): a floating window changes size, a tiled one changes the
    /// master column's width or its share of the stack's height.
    Resize(Resize),
    /// `toggle-floating`: float the focused window, or tile it again.
    ToggleFloating,
    /// `fullscreen`: toggle fullscreen of the focused window.
    Fullscreen,
    /// `maximize`: toggle maximize of the focused window.
    Maximize,
    /// `minimize`: hide the focused window until something focuses it again.
    Minimize,
    /// `unminimize`: bring back the window minimized last on the shown workspace.
    Unminimize,
    /// `focus-window ID`: focus window ID (the `id` of `lockstep msg windows`), showing its
    /// workspace and bringing it back when minimized.
    FocusWindow(u64),
    /// `reload-config`: read the config file again (an invalid file keeps the old config).
    ReloadConfig,
    /// `quit`: end the session. A key binding asks for a second press first.
    Quit,
    /// `screenshot [FILE.png]`: save a PNG of the active output (default:
    /// `$XDG_PICTURES_DIR` or `~/lockstep-<time>.png`).
    Screenshot(Option<PathBuf>),
    /// `power-outputs on|off`: turn every display on or off (DPMS); windows keep their
    /// place. The same as wlr-output-power-management (`wlopm`).
    PowerOutputs(bool),
    /// `none`: do nothing (removes a default binding).
    None,
}

/// Why a list of words is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionParseError {
    /// What is wrong.
    pub message: String,
}

/// The action names, for hints and the README.
pub const ACTION_NAMES: &[&str] = &[
    "spawn",
    "spawn-sh",
    "terminal",
    "launcher",
    "close",
    "focus",
    "move",
    "workspace",
    "move-to-workspace",
    "move-workspace-to-output",
    "resize",
    "toggle-floating",
    "fullscreen",
    "maximize",
    "minimize",
    "unminimize",
    "focus-window",
    "reload-config",
    "quit",
    "screenshot",
    "power-outputs",
    "none",
];

impl Action {
    /// Parses an action from its words (`["workspace", "3"]`).
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Action, ActionParseError> {
        let fail = |message: String| Err(ActionParseError { message });
        let Some((name, args)) = words.split_first() else {
            return fail(format!(
                "an empty action; actions are: {}",
                ACTION_NAMES.join(", ")
            ));
        };
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let name = name.as_ref();
        let no_args = |action: Action| {
            if args.is_empty() {
                Ok(action)
            } else {
                fail(format!(
                    "`{name}` takes no arguments, found `{}`",
                    args.join(" ")
                ))
            }
        };
        let one = |what: &str| match args.as_slice() {
            [one] => Ok((*one).to_owned()),
            _ => Err(ActionParseError {
                message: format!("`{name}` takes one argument: {what}"),
            }),
        };
        let direction = || match args.as_slice() {
            [d] => parse_direction(name, d),
            _ => Err(ActionParseError {
                message: format!("`{name}` takes one direction: left, right, up or down"),
            }),
        };
        match name {
            "spawn" if args.is_empty() => fail("`spawn` needs a program, e.g. `spawn foot`".into()),
            "spawn" => Ok(Action::Spawn(
                args.iter().map(|s| (*s).to_owned()).collect(),
            )),
            "spawn-sh" if args.is_empty() => {
                fail("`spawn-sh` needs a command, e.g. `spawn-sh foot >/tmp/log`".into())
            }
            "spawn-sh" => Ok(Action::SpawnSh(args.join(" "))),
            "terminal" => no_args(Action::Terminal),
            "launcher" => no_args(Action::Launcher),
            "close" => no_args(Action::Close),
            "focus" => direction().map(Action::Focus),
            "move" => parse_move(&args),
            "workspace" => {
                one("a workspace number or name, e.g. `workspace 2`").map(Action::Workspace)
            }
            "move-to-workspace" => one("a workspace number or name, e.g. `move-to-workspace 2`")
                .map(Action::MoveToWorkspace),
            "move-workspace-to-output" => {
                one("an output name, e.g. `move-workspace-to-output HDMI-A-1`")
                    .map(Action::MoveWorkspaceToOutput)
            }
            "resize" => parse_resize(&args).map(Action::Resize),
            "toggle-floating" => no_args(Action::ToggleFloating),
            "fullscreen" => no_args(Action::Fullscreen),
            "maximize" => no_args(Action::Maximize),
            "minimize" => no_args(Action::Minimize),
            "unminimize" => no_args(Action::Unminimize),
            "focus-window" => {
                let id = one("a window id from `lockstep msg windows`, e.g. `focus-window 3`")?;
                id.parse().map(Action::FocusWindow).or_else(|_| {
                    fail(format!(
                        "`focus-window` takes a window id (a number from `lockstep msg windows`), found `{id}`"
                    ))
                })
            }
            "reload-config" => no_args(Action::ReloadConfig),
            "quit" => no_args(Action::Quit),
            "screenshot" => match args.as_slice() {
                [] => Ok(Action::Screenshot(None)),
                [path] => Ok(Action::Screenshot(Some(PathBuf::from(path)))),
                _ => fail("`screenshot` takes at most one file name".into()),
            },
            "power-outputs" => match args.as_slice() {
                ["on"] => Ok(Action::PowerOutputs(true)),
                ["off"] => Ok(Action::PowerOutputs(false)),
                _ => fail("`power-outputs` takes `on` or `off`".into()),
            },
            "none" => no_args(Action::None),
            other => {
                let close = ACTION_NAMES
                    .iter()
                    .find(|n| crate::error::is_close(other, n))
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                fail(format!(
                    "unknown action `{other}`; {close}actions are: {}",
                    ACTION_NAMES.join(", ")
                ))
            }
        }
    }

    /// Parses an action written as one string (`"workspace 3"`).
    pub fn parse(text: &str) -> Result<Action, ActionParseError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        Action::from_words(&words)
    }
}

fn parse_direction(action: &str, word: &str) -> Result<Direction, ActionParseError> {
    match word.to_ascii_lowercase().as_str() {
        "left" => Ok(Direction::Left),
        "right" => Ok(Direction::Right),
        "up" => Ok(Direction::Up),
        "down" => Ok(Direction::Down),
        other => Err(ActionParseError {
            message: format!("`{action}` takes left, right, up or down, found `{other}`"),
        }),
    }
}

/// An amount of 1..=[`MAX_AMOUNT`].
fn parse_amount(action: &str, word: &str) -> Result<u32, ActionParseError> {
    match word.parse::<u32>() {
        Ok(n) if (1..=MAX_AMOUNT).contains(&n) => Ok(n),
        _ => Err(ActionParseError {
            message: format!("`{action}` takes an amount from 1 to {MAX_AMOUNT}, found `{word}`"),
        }),
    }
}

/// `move DIRECTION [N [px]]`.
fn parse_move(args: &[&str]) -> Result<Action, ActionParseError> {
    let usage = || ActionParseError {
        message: "`move` takes a direction and an optional amount in px, e.g. `move left` or \
                  `move left 20 px`"
            .into(),
    };
    match args {
        [d] => Ok(Action::Move(parse_direction("move", d)?, None)),
        [d, n] | [d, n, "px"] => Ok(Action::Move(
            parse_direction("move", d)?,
            Some(parse_amount("move", n)?),
        )),
        _ => Err(usage()),
    }
}

/// `resize grow|shrink [width|height [N [px|ppt]]]`.
fn parse_resize(args: &[&str]) -> Result<Resize, ActionParseError> {
    let usage = || ActionParseError {
        message: "`resize` takes grow or shrink, width or height, and an optional amount in px \
                  or ppt, e.g. `resize grow width 10 ppt`"
            .into(),
    };
    let (grow, rest) = match args.split_first() {
        Some((&"grow", rest)) => (true, rest),
        Some((&"shrink", rest)) => (false, rest),
        _ => return Err(usage()),
    };
    let (axis, rest) = match rest.split_first() {
        None => (ResizeAxis::Width, rest),
        Some((&"width", rest)) => (ResizeAxis::Width, rest),
        Some((&"height", rest)) => (ResizeAxis::Height, rest),
        Some(_) => return Err(usage()),
    };
    let (amount, unit) = match rest {
        [] => (DEFAULT_RESIZE_AMOUNT, None),
        [n] => (parse_amount("resize", n)?, None),
        [n, "px"] => (parse_amount("resize", n)?, Some(ResizeUnit::Px)),
        [n, "ppt"] => (parse_amount("resize", n)?, Some(ResizeUnit::Ppt)),
        _ => return Err(usage()),
    };
    Ok(Resize {
        grow,
        axis,
        amount,
        unit,
    })
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Left => "left",
            Direction::Right => "right",
            Direction::Up => "up",
            Direction::Down => "down",
        })
    }
}

/// The modifiers of a key combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers {
    /// Super (the logo key, Mod4).
    pub super_: bool,
    /// Control.
    pub ctrl: bool,
    /// Alt (Mod1).
    pub alt: bool,
    /// Shift.
    pub shift: bool,
}

/// A key combination: modifiers and an xkb keysym name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    /// The modifiers held.
    pub modifiers: Modifiers,
    /// The keysym name as written (`Return`, `q`, `1`); matched case-insensitively for
    /// letters.
    pub key: String,
}

impl KeyCombo {
    /// Parses `Super+Shift+Q`.
    pub fn parse(text: &str) -> Result<KeyCombo, ActionParseError> {
        let fail = |message: String| Err(ActionParseError { message });
        let parts: Vec<&str> = text.split('+').map(str::trim).collect();
        let Some((key, mods)) = parts.split_last() else {
            return fail("an empty key combination".into());
        };
        if key.is_empty() {
            return fail(format!(
                "`{text}` has no key after the last `+`; write e.g. `Super+Return` (the plus key is `plus`)"
            ));
        }
        let mut modifiers = Modifiers::default();
        for m in mods {
            let slot = match m.to_ascii_lowercase().as_str() {
                "super" | "mod4" | "logo" | "win" => &mut modifiers.super_,
                "ctrl" | "control" => &mut modifiers.ctrl,
                "alt" | "mod1" => &mut modifiers.alt,
                "shift" => &mut modifiers.shift,
                other => {
                    return fail(format!(
                        "unknown modifier `{other}` in `{text}`; modifiers are Super, Ctrl, Alt and Shift"
                    ))
                }
            };
            if *slot {
                return fail(format!("modifier `{m}` appears twice in `{text}`"));
            }
            *slot = true;
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail(format!("`{key}` is not a keysym name"));
        }
        Ok(KeyCombo {
            modifiers,
            key: (*key).to_owned(),
        })
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.modifiers;
        for (on, name) in [
            (m.super_, "Super+"),
            (m.ctrl, "Ctrl+"),
            (m.alt, "Alt+"),
            (m.shift, "Shift+"),
        ] {
            if on {
                f.write_str(name)?;
            }
        }
        f.write_str(&self.key)
    }
}

/// One binding: keys, action, and whether it works while the session is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The keys.
    pub combo: KeyCombo,
    /// What it does.
    pub action: Action,
    /// Whether it runs while the screen is locked (volume keys, say). Default false.
    pub allow_when_locked: bool,
}

/// A `[binds]` value as written: an action string, or a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum BindSpec {
    /// `"Super+Q" = "close"`.
    Action(String),
    /// `"Super+Q" = { action = "close", allow_when_locked = false }`.
    Table {
        /// The action.
        action: String,
        /// Whether it runs while the screen is locked.
        #[serde(default)]
        allow_when_locked: bool,
    },
}

impl BindSpec {
    /// The action text and the lock flag.
    pub fn parts(&self) -> (&str, bool) {
        match self {
            BindSpec::Action(a) => (a, false),
            BindSpec::Table {
                action,
                allow_when_locked,
            } => (action, *allow_when_locked),
        }
    }
}

/// The default bindings, modelled on sway's.
pub const DEFAULT_BINDS: &[(&str, &str)] = &[
    ("Super+Return", "terminal"),
    ("Super+D", "launcher"),
    ("Super+Shift+Q", "close"),
    ("Super+Left", "focus left"),
    ("Super+Right", "focus right"),
    ("Super+Up", "focus up"),
    ("Super+Down", "focus down"),
    ("Super+H", "focus left"),
    ("Super+L", "focus right"),
    ("Super+K", "focus up"),
    ("Super+J", "focus down"),
    ("Super+Shift+Left", "move left"),
    ("Super+Shift+Right", "move right"),
    ("Super+Shift+Up", "move up"),
    ("Super+Shift+Down", "move down"),
    ("Super+Shift+H", "move left"),
    ("Super+Shift+L", "move right"),
    ("Super+Shift+K", "move up"),
    ("Super+Shift+J", "move down"),
    ("Super+1", "workspace 1"),
    ("Super+2", "workspace 2"),
    ("Super+3", "workspace 3"),
    ("Super+4", "workspace 4"),
    ("Super+5", "workspace 5"),
    ("Super+6", "workspace 6"),
    ("Super+7", "workspace 7"),
    ("Super+8", "workspace 8"),
    ("Super+9", "workspace 9"),
    ("Super+0", "workspace 10"),
    ("Super+Shift+1", "move-to-workspace 1"),
    ("Super+Shift+2", "move-to-workspace 2"),
    ("Super+Shift+3", "move-to-workspace 3"),
    ("Super+Shift+4", "move-to-workspace 4"),
    ("Super+Shift+5", "move-to-workspace 5"),
    ("Super+Shift+6", "move-to-workspace 6"),
    ("Super+Shift+7", "move-to-workspace 7"),
    ("Super+Shift+8", "move-to-workspace 8"),
    ("Super+Shift+9", "move-to-workspace 9"),
    ("Super+Shift+0", "move-to-workspace 10"),
    ("Super+F", "fullscreen"),
    ("Super+M", "maximize"),
    ("Super+N", "minimize"),
    ("Super+Shift+N", "unminimize"),
    ("Super+Shift+Space", "toggle-floating"),
    ("Super+Equal", "resize grow width"),
    ("Super+Minus", "resize shrink width"),
    ("Super+Ctrl+Right", "resize grow width"),
    ("Super+Ctrl+Left", "resize shrink width"),
    ("Super+Ctrl+Down", "resize grow height"),
    ("Super+Ctrl+Up", "resize shrink height"),
    ("Super+Ctrl+L", "resize grow width"),
    ("Super+Ctrl+H", "resize shrink width"),
    ("Super+Ctrl+J", "resize grow height"),
    ("Super+Ctrl+K", "resize shrink height"),
    ("Super+Shift+C", "reload-config"),
    ("Super+Shift+E", "quit"),
    ("Print", "screenshot"),
];

/// Normalises a combo for comparison: the same keys written differently are one binding.
fn combo_key(combo: &KeyCombo) -> (Modifiers, String) {
    (combo.modifiers, combo.key.to_ascii_lowercase())
}

impl crate::Config {
    /// The bindings in force: the defaults with the `[binds]` entries replacing those of the
    /// same keys, without the ones bound to `none`. Entries that do not parse are skipped
    /// (a validated config has none).
    pub fn bindings(&self) -> Vec<Binding> {
        let mut out: Vec<Binding> = Vec::new();
        let defaults = DEFAULT_BINDS
            .iter()
            .map(|(k, a)| (*k, BindSpec::Action((*a).to_owned())));
        let user = self.binds.iter().map(|(k, v)| (k.as_str(), v.clone()));
        for (keys, spec) in defaults.chain(user) {
            let (action, allow_when_locked) = spec.parts();
            let (Ok(combo), Ok(action)) = (KeyCombo::parse(keys), Action::parse(action)) else {
                continue;
            };
            out.retain(|b| combo_key(&b.combo) != combo_key(&combo));
            if action != Action::None {
                out.push(Binding {
                    combo,
                    action,
                    allow_when_locked,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse() {
        assert_eq!(
            Action::parse("workspace 3"),
            Ok(Action::Workspace("3".into()))
        );
        assert_eq!(
            Action::parse("spawn foot -e htop"),
            Ok(Action::Spawn(vec![
                "foot".into(),
                "-e".into(),
                "htop".into()
            ]))
        );
        assert_eq!(
            Action::parse("focus LEFT"),
            Ok(Action::Focus(Direction::Left))
        );
        let err = Action::parse("workspase 3").unwrap_err();
        assert!(err.message.contains("did you mean `workspace`"), "{err}");
        assert!(Action::parse("close now").is_err());
        assert!(Action::parse("focus sideways").is_err());
        assert_eq!(
            Action::parse("move up 20 px"),
            Ok(Action::Move(Direction::Up, Some(20)))
        );
        assert_eq!(
            Action::parse("move left"),
            Ok(Action::Move(Direction::Left, None))
        );
        assert!(Action::parse("move left 0").is_err());
        assert!(Action::parse("move left 20 ppt").is_err());
        assert_eq!(
            Action::parse("resize grow"),
            Ok(Action::Resize(Resize {
                grow: true,
                axis: ResizeAxis::Width,
                amount: DEFAULT_RESIZE_AMOUNT,
                unit: None
            }))
        );
        assert_eq!(
            Action::parse("resize shrink height 30 px"),
            Ok(Action::Resize(Resize {
                grow: false,
                axis: ResizeAxis::Height,
                amount: 30,
                unit: Some(ResizeUnit::Px)
            }))
        );
        assert_eq!(
            Action::parse("resize grow width 5 ppt"),
            Ok(Action::Resize(Resize {
                grow: true,
                axis: ResizeAxis::Width,
                amount: 5,
                unit: Some(ResizeUnit::Ppt)
            }))
        );
        for bad in [
            "resize",
            "resize bigger",
            "resize grow depth",
            "resize grow width ten",
            "resize grow width 10 cm",
            "resize grow width 200000",
        ] {
            assert!(Action::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Action::parse("focus-window 12"),
            Ok(Action::FocusWindow(12))
        );
        assert!(Action::parse("focus-window twelve").is_err());
        assert!(Action::parse("focus-window").is_err());
        assert_eq!(Action::parse("minimize"), Ok(Action::Minimize));
        assert!(Action::parse("").is_err());
    }

    #[test]
    fn combos_parse() {
        let c = KeyCombo::parse("shift+SUPER+q").unwrap();
        assert!(c.modifiers.super_ && c.modifiers.shift && !c.modifiers.ctrl);
        assert_eq!(c.key, "q");
        assert_eq!(c.to_string(), "Super+Shift+q");
        assert!(KeyCombo::parse("Hyper+Q").is_err());
        assert!(KeyCombo::parse("Super+").is_err());
        assert!(KeyCombo::parse("Super+Super+Q").is_err());
    }

    #[test]
    fn every_default_binding_parses() {
        for (keys, action) in DEFAULT_BINDS {
            KeyCombo::parse(keys).unwrap();
            Action::parse(action).unwrap();
        }
        assert_eq!(
            crate::Config::default().bindings().len(),
            DEFAULT_BINDS.len()
        );
    }

    #[test]
    fn user_binds_replace_and_remove_defaults() {
        let config = crate::Config::parse(
            "[binds]\n\"super+return\" = \"spawn alacritty\"\n\"Super+D\" = \"none\"\n",
            std::path::Path::new("t"),
        )
        .unwrap();
        let binds = config.bindings();
        assert_eq!(binds.len(), DEFAULT_BINDS.len() - 1);
        let ret = binds
            .iter()
            .find(|b| b.combo.key.eq_ignore_ascii_case("return"))
            .unwrap();
        assert_eq!(ret.action, Action::Spawn(vec!["alacritty".into()]));
    }
}
