//! Errors as one line of text, causes included: the libraries underneath
//! often name only the kind of failure ("db error", "dispatch failure") and
//! keep the useful words in their sources.

/// A database failure: what failed and why, on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DbError(String);

impl DbError {
    /// `context: ` then `err` and its causes, on one line.
    pub fn new(context: &str, err: &(dyn std::error::Error + 'static)) -> DbError {
        DbError(format!("{context}: {}", error_chain(err)))
    }

    /// An error described by `message` alone.
    pub fn message(message: impl Into<String>) -> DbError {
        DbError(one_line(&message.into()))
    }
}

/// An error and its sources on one line, without repeats: a cause whose
/// text an earlier part already contains is left out.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    one_line(&parts.join(": "))
}

/// `text` with every run of whitespace, newlines included, as one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |source, &text| {
                Some(Layer {
                    text,
                    source: source.map(Box::new),
                })
            })
            .unwrap()
    }

    #[test]
    fn the_chain_is_one_line_without_repeats_or_empty_parts() {
        let err = layers(&[
            "db error",
            "",
            "ERROR:  relation\n  \"x\" does not exist",
            "relation",
        ]);
        assert_eq!(
            error_chain(&err),
            "db error: ERROR: relation \"x\" does not exist"
        );
        assert_eq!(
            DbError::new("postgres", &err).to_string(),
            "postgres: db error: ERROR: relation \"x\" does not exist"
        );
        assert_eq!(DbError::message("two\nlines").to_string(), "two lines");
    }
}
