//! The HTTP metadata of each kind of object, derived from its key alone, so
//! the upload path (object storage served to monitors directly) and this
//! server's read path always agree.

/// Content headers for one stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHeaders {
    pub content_type: &'static str,
    pub content_encoding: Option<&'static str>,
    pub cache_control: &'static str,
}

/// `Cache-Control` of everything that never changes once written.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=604800, immutable";

/// Whether `key` may never change once written (tiles and issuers).
pub fn is_immutable(key: &str) -> bool {
    key.starts_with("tile/") || key.starts_with("issuer/")
}

impl ObjectHeaders {
    /// Headers for `key`: data tiles are stored gzip-compressed; the
    /// checkpoint is the only object a cache must not keep.
    pub fn for_key(key: &str) -> ObjectHeaders {
        if key == "checkpoint" {
            return ObjectHeaders {
                content_type: "text/plain; charset=utf-8",
                content_encoding: None,
                cache_control: "no-store",
            };
        }
        if key.starts_with("issuer/") {
            return ObjectHeaders {
                content_type: "application/pkix-cert",
                content_encoding: None,
                cache_control: IMMUTABLE_CACHE_CONTROL,
            };
        }
        let content_encoding = key.starts_with("tile/data/").then_some("gzip");
        let cache_control = if is_immutable(key) {
            IMMUTABLE_CACHE_CONTROL
        } else {
            "no-store"
        };
        ObjectHeaders {
            content_type: "application/octet-stream",
            content_encoding,
            cache_control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_spec() {
        let cp = ObjectHeaders::for_key("checkpoint");
        assert_eq!(cp.content_type, "text/plain; charset=utf-8");
        assert_eq!(cp.cache_control, "no-store");
        let data = ObjectHeaders::for_key("tile/data/000.p/5");
        assert_eq!(data.content_encoding, Some("gzip"));
        assert_eq!(data.cache_control, IMMUTABLE_CACHE_CONTROL);
        let hash = ObjectHeaders::for_key("tile/1/000");
        assert_eq!(
            (hash.content_type, hash.content_encoding),
            ("application/octet-stream", None)
        );
        assert_eq!(
            ObjectHeaders::for_key("issuer/ab").content_type,
            "application/pkix-cert"
        );
        assert_eq!(
            ObjectHeaders::for_key("staging/1-ab").cache_control,
            "no-store"
        );
        assert!(
            is_immutable("tile/0/000")
                && !is_immutable("checkpoint")
                && !is_immutable("staging/1-a")
        );
    }
}
