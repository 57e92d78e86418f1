//! ZooKeeper path rules: validation (as `PathUtils.validatePath` defines it, reference §2.12) and
//! parent / name splitting. Pure string functions.

/// Why a path is not a valid znode path. Every variant becomes BadArguments (-8) on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    Empty,
    NotAbsolute,
    TrailingSlash,
    EmptyComponent,
    RelativeComponent,
    InvalidChar(u32),
}

/// Characters ZooKeeper refuses, judged per UTF-16 code unit like Java does. Characters outside
/// the BMP are encoded as surrogate pairs in Java, and surrogates are refused, so every
/// supplementary character is refused too.
fn invalid_char(c: char) -> bool {
    let u = c as u32;
    u == 0
        || (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// Full validation of a znode path.
pub fn validate(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    for c in path.chars() {
        if invalid_char(c) {
            return Err(PathError::InvalidChar(c as u32));
        }
    }
    for comp in path[1..].split('/') {
        if comp.is_empty() {
            return Err(PathError::EmptyComponent);
        }
        if comp == "." || comp == ".." {
            return Err(PathError::RelativeComponent);
        }
    }
    Ok(())
}

/// The weak check ZooKeeper applies before a parent lookup: a '/' somewhere and no NUL.
pub fn has_slash_no_nul(path: &str) -> bool {
    path.contains('/') && !path.contains('\0')
}

/// Parent path as ZooKeeper computes it: everything before the last '/', with "" meaning the
/// root (so the parent of "/a" is "/"). `None` when there is no '/'.
pub fn parent(path: &str) -> Option<&str> {
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// Last component (the child name under its parent).
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Join a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The accept/refuse table of PathUtils.validatePath (reference §2.12).
    #[test]
    fn validation_table() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/...",
            "/a b",
            "/é",
            "/zookeeper",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate(""), Err(PathError::Empty));
        assert_eq!(validate("a"), Err(PathError::NotAbsolute));
        assert_eq!(validate("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(validate("//a"), Err(PathError::EmptyComponent));
        assert_eq!(validate("/a//b"), Err(PathError::EmptyComponent));
        assert_eq!(validate("/a/./b"), Err(PathError::RelativeComponent));
        assert_eq!(validate("/.."), Err(PathError::RelativeComponent));
        assert_eq!(validate("/a\u{0}"), Err(PathError::InvalidChar(0)));
        assert_eq!(validate("/a\u{7f}"), Err(PathError::InvalidChar(0x7f)));
        assert_eq!(validate("/\u{e000}"), Err(PathError::InvalidChar(0xe000)));
        assert_eq!(validate("/\u{fff0}"), Err(PathError::InvalidChar(0xfff0)));
        assert!(validate("/\u{1f600}").is_err());
    }

    // Parent of a top-level node is the root; names carry no slash.
    #[test]
    fn parent_and_name() {
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/"), Some("/"));
        assert_eq!(parent("abc"), None);
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
