//! `Config::load(None)` and the default path. Alone in its test binary because it sets
//! environment variables, which other tests running in parallel threads would see.

use lockstep_config::{default_path, Config, ConfigSource};

#[test]
fn default_path_missing_means_defaults_then_file_is_read() {
    let xdg = std::env::temp_dir().join(format!("lockstep-config-{}-xdg", std::process::id()));
    let _ = std::fs::remove_dir_all(&xdg);
    std::env::set_var("XDG_CONFIG_HOME", &xdg);
    let path = xdg.join("lockstep").join("config.toml");
    assert_eq!(default_path(), Some(path.clone()));

    let loaded = Config::load(None).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(
        loaded.source,
        ConfigSource::Defaults {
            missing: Some(path.clone())
        }
    );

    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "[keyboard]\nlayout = \"fr\"\n").unwrap();
    let loaded = Config::load(None).unwrap();
    assert_eq!(loaded.config.keyboard.layout, "fr");
    assert_eq!(loaded.source, ConfigSource::File(path.clone()));

    // An invalid default file is an error, not a silent fallback to defaults.
    std::fs::write(&path, "[keyboard]\nlayout = 1\n").unwrap();
    assert!(Config::load(None).is_err());
    std::fs::remove_dir_all(&xdg).unwrap();
}
