//! `Config::load` with explicit paths: found, missing, unreadable, invalid.

use std::path::PathBuf;

use lockstep_config::{Config, ConfigError, ConfigSource, ErrorKind};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn explicit_file_is_read() {
    let path = temp_dir("read").join("config.toml");
    std::fs::write(&path, "[cursor]\nsize = 48\n").unwrap();
    let loaded = Config::load(Some(&path)).unwrap();
    assert_eq!(loaded.config.cursor.size, 48);
    assert_eq!(loaded.source, ConfigSource::File(path));
}

#[test]
fn explicit_missing_file_is_an_error() {
    let path = temp_dir("missing").join("nope.toml");
    match Config::load(Some(&path)) {
        Err(ConfigError::Read { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreadable_file_is_an_error() {
    let dir = temp_dir("dir");
    let err = Config::load(Some(&dir)).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with(&format!("cannot read config file {}: ", dir.display())));
}

#[test]
fn invalid_file_names_the_path() {
    let path = temp_dir("invalid").join("config.toml");
    std::fs::write(&path, "[keyboard]\nrepeat = 30\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err();
    let d = err.diagnostic().unwrap();
    assert_eq!((d.kind, d.line, d.column), (ErrorKind::UnknownKey, 2, 1));
    assert_eq!(d.path, path);
    assert!(err
        .to_string()
        .starts_with(&format!("{}:2:1: error: ", path.display())));
}
