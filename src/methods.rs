//! The request methods a listed status may pass on, by name.

/// The methods nginx itself recognises (`NGX_HTTP_GET` ... `NGX_HTTP_PATCH`); a request with any
/// other method is `NGX_HTTP_UNKNOWN` to nginx and cannot be listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Mkcol,
    Copy,
    Move,
    Options,
    Propfind,
    Proppatch,
    Lock,
    Unlock,
    Patch,
}

impl Method {
    pub const ALL: [Method; 14] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Mkcol,
        Method::Copy,
        Method::Move,
        Method::Options,
        Method::Propfind,
        Method::Proppatch,
        Method::Lock,
        Method::Unlock,
        Method::Patch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Mkcol => "MKCOL",
            Method::Copy => "COPY",
            Method::Move => "MOVE",
            Method::Options => "OPTIONS",
            Method::Propfind => "PROPFIND",
            Method::Proppatch => "PROPPATCH",
            Method::Lock => "LOCK",
            Method::Unlock => "UNLOCK",
            Method::Patch => "PATCH",
        }
    }

    /// Method names are case-sensitive in HTTP, and nginx's `limit_except` takes them in
    /// upper case; so do we.
    pub fn from_name(name: &[u8]) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().as_bytes() == name)
    }
}

/// A set of methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MethodSet(u16);

impl MethodSet {
    /// Reads must be safe to send anywhere; writes must stay where they were sent (a registry
    /// upload session exists on one server only). So only GET and HEAD by default.
    pub const DEFAULT: MethodSet = MethodSet(1 << Method::Get as u16 | 1 << Method::Head as u16);

    pub fn contains(self, method: Method) -> bool {
        self.0 & 1 << method as u16 != 0
    }

    /// Adds `method`; returns `false` if it was already there.
    pub fn insert(&mut self, method: Method) -> bool {
        let fresh = !self.contains(method);
        self.0 |= 1 << method as u16;
        fresh
    }

    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |m| self.contains(*m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name().as_bytes()), Some(m));
        }
        for bad in [&b"get"[..], b"", b"CONNECT", b"TRACE", b"GETX", b"G"] {
            assert_eq!(
                Method::from_name(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn default_is_get_and_head() {
        let got: Vec<_> = MethodSet::DEFAULT.iter().collect();
        assert_eq!(got, [Method::Get, Method::Head]);
    }
}
