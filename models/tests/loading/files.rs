//! Model directory layout and cache directory selection.

use std::path::Path;

use streampool_models::loading::{
    default_cache_dir, locate_model, LoadError, MODEL_DIR_NAME, REQUIRED_FILES,
};

fn touch_all(dir: &Path, except: Option<&str>) {
    for name in REQUIRED_FILES.iter().filter(|n| Some(**n) != except) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"{}").unwrap();
    }
}

#[test]
fn missing_dir_tells_the_user_to_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(MODEL_DIR_NAME);
    let err = locate_model(&dir).unwrap_err();
    assert!(matches!(err, LoadError::ModelDirMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("streampool fetch-model"), "{message}");
    assert!(message.contains(&dir.display().to_string()), "{message}");
}

#[test]
fn each_missing_file_is_named() {
    for missing in REQUIRED_FILES {
        let tmp = tempfile::tempdir().unwrap();
        touch_all(tmp.path(), Some(missing));
        match locate_model(tmp.path()).unwrap_err() {
            LoadError::FileMissing { path } => assert_eq!(path, tmp.path().join(missing)),
            other => panic!("expected FileMissing for {missing}, got {other:?}"),
        }
    }
}

#[test]
fn complete_dir_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    touch_all(tmp.path(), None);
    let files = locate_model(tmp.path()).unwrap();
    assert_eq!(files.dir, tmp.path());
    assert_eq!(files.weights, tmp.path().join("model.safetensors"));
    assert_eq!(files.pooling_config, tmp.path().join("1_Pooling/config.json"));
}

/// The only test in this binary that touches the environment (tests run on threads).
#[test]
fn cache_dir_precedence() {
    let saved: Vec<_> = ["STREAMPOOL_HOME", "XDG_CACHE_HOME", "HOME"]
        .iter()
        .map(|k| (*k, std::env::var_os(k)))
        .collect();
    std::env::set_var("HOME", "/home/someone");
    std::env::set_var("XDG_CACHE_HOME", "");
    std::env::remove_var("STREAMPOOL_HOME");
    assert_eq!(default_cache_dir().unwrap(), Path::new("/home/someone/.cache/streampool"));
    std::env::set_var("XDG_CACHE_HOME", "/xdg");
    assert_eq!(default_cache_dir().unwrap(), Path::new("/xdg/streampool"));
    std::env::set_var("STREAMPOOL_HOME", "/sp");
    assert_eq!(default_cache_dir().unwrap(), Path::new("/sp"));
    std::env::remove_var("STREAMPOOL_HOME");
    std::env::remove_var("XDG_CACHE_HOME");
    std::env::remove_var("HOME");
    assert!(matches!(default_cache_dir().unwrap_err(), LoadError::NoCacheDir));
    for (key, value) in saved {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}
