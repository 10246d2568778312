//! The example config and every TOML example in the crate docs parse.

use std::path::Path;

use lockstep_config::{Config, Mode, Position};

const EXAMPLE: &str = include_str!("../example-config.toml");

/// Sources whose doc comments hold TOML examples.
const SOURCES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../src/lib.rs")),
    ("src/model.rs", include_str!("../src/model.rs")),
    ("src/mode.rs", include_str!("../src/mode.rs")),
    ("src/error.rs", include_str!("../src/error.rs")),
    ("src/schema.rs", include_str!("../src/schema.rs")),
    ("src/validate.rs", include_str!("../src/validate.rs")),
    ("src/binds.rs", include_str!("../src/binds.rs")),
];

/// The ```toml blocks of the `//!` and `///` comments of `source`, with their first line.
fn toml_blocks(source: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(doc) = trimmed
            .strip_prefix("//!")
            .or_else(|| trimmed.strip_prefix("///"))
        else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match &mut current {
            None if doc.trim_end() == "```toml" => current = Some((i + 2, String::new())),
            Some(_) if doc.trim_end() == "```" => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(doc);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "unterminated ```toml block");
    blocks
}

#[test]
fn every_toml_example_in_the_docs_parses() {
    let mut count = 0;
    for (file, source) in SOURCES {
        for (line, text) in toml_blocks(source) {
            let path = format!("{file}:{line} (doc example)");
            if let Err(err) = Config::parse(&text, Path::new(&path)) {
                panic!("{err}");
            }
            count += 1;
        }
    }
    // The lib.rs docs have three; make sure the extraction found them.
    assert!(count >= 3, "found only {count} ```toml blocks");
}

#[test]
fn example_config_parses_to_the_documented_values() {
    let config = Config::parse(EXAMPLE, Path::new("example-config.toml")).unwrap();
    let first = &config.outputs[0];
    assert_eq!(first.name.as_deref(), Some("HEADLESS-1"));
    assert_eq!(first.mode, Some("1920x1080@60".parse::<Mode>().unwrap()));
    assert_eq!(first.scale, 1.0);
    assert_eq!(first.position, Some(Position { x: 0, y: 0 }));
    assert!(first.enabled);
    let second = &config.outputs[1];
    assert_eq!(
        second.mode.map(|m| m.to_string()).as_deref(),
        Some("1280x720")
    );
    assert_eq!(second.scale, 2.0);
    assert_eq!(config.outputs.len(), 2);
    // The other tables spell out the defaults.
    let defaults = Config::default();
    assert_eq!(config.keyboard, defaults.keyboard);
    assert_eq!(config.explicit_sync, defaults.explicit_sync);
    assert_eq!(config.cursor, defaults.cursor);
    assert_eq!(config.xwayland, defaults.xwayland);
    assert_eq!(config.render, defaults.render);
    assert_eq!(config.limits, defaults.limits);
}

#[test]
fn example_config_comments_every_key() {
    // Each `key = value` of a commented table has a comment right above it, except in the
    // second [[output]], which repeats keys already explained.
    let mut previous = "";
    let mut in_second_output = false;
    let mut outputs = 0;
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if line == "[[output]]" {
            outputs += 1;
            in_second_output = outputs == 2;
        } else if line.starts_with('[') {
            in_second_output = false;
        } else if line.contains('=') && !line.starts_with('#') && !in_second_output {
            assert!(previous.starts_with('#'), "no comment above `{line}`");
        }
        previous = line;
    }
}

#[test]
fn empty_file_is_the_defaults() {
    for text in ["", "\n", "# only a comment\n"] {
        assert_eq!(
            Config::parse(text, Path::new("t")).unwrap(),
            Config::default()
        );
    }
    let d = Config::default();
    assert!(d.outputs.is_empty());
    assert_eq!(
        (
            d.keyboard.layout.as_str(),
            d.keyboard.variant.as_str(),
            d.keyboard.options.as_str()
        ),
        ("us", "", "")
    );
    assert_eq!((d.keyboard.repeat_rate, d.keyboard.repeat_delay), (25, 600));
    assert!(d.explicit_sync.enabled);
    assert_eq!(d.explicit_sync.acquire_timeout_ms, 2000);
    assert_eq!(d.explicit_sync.acquire_timeout().as_millis(), 2000);
    assert_eq!((d.cursor.theme.as_str(), d.cursor.size), ("default", 24));
    assert_eq!((d.layout.gaps, d.layout.border_width), (8, 2));
    assert_eq!(d.render.renderer, lockstep_config::Renderer::Auto);
    assert_eq!(d.limits.shm_bytes_per_client.bytes(), 64 << 30);
    assert_eq!(d.limits.buffers_per_client, 16384);
    assert_eq!(d.bindings().len(), lockstep_config::DEFAULT_BINDS.len());
}

#[test]
fn the_example_config_binds_what_it_says() {
    let config = Config::parse(EXAMPLE, Path::new("example-config.toml")).unwrap();
    let binds = config.bindings();
    assert_eq!(binds.len(), lockstep_config::DEFAULT_BINDS.len() + 1);
    assert!(binds
        .iter()
        .any(|b| b.combo.to_string() == "Super+Shift+Return"
            && b.action
                == lockstep_config::Action::Spawn(vec![
                    "foot".into(),
                    "--app-id".into(),
                    "scratch".into()
                ])));
}

#[test]
fn output_lookup_prefers_the_named_entry() {
    let text = "[[output]]\nscale = 2\n[[output]]\nname = \"winit\"\nenabled = false\n";
    let config = Config::parse(text, Path::new("t")).unwrap();
    assert!(!config.output("winit").unwrap().enabled);
    assert_eq!(config.output("HEADLESS-1").unwrap().scale, 2.0);
    assert_eq!(Config::default().output("winit"), None);
}
