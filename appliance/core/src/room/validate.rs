//! Validation of the values a client names: room IDs, display names, PINs, chat text.

use crate::secret::Secret;
use crate::signal::ErrorCode;

/// Longest room ID and display name, in characters.
pub(crate) const MAX_ID_CHARS: usize = 64;
/// Longest PIN, in characters.
pub(crate) const MAX_PIN_CHARS: usize = 32;

pub(crate) fn room_id(room: &str) -> Result<(), ErrorCode> {
    let valid = !room.is_empty()
        && room.len() <= MAX_ID_CHARS
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ErrorCode::InvalidRoom)
    }
}

/// Returns the trimmed name.
pub(crate) fn display_name(name: &str) -> Result<&str, ErrorCode> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS || name.chars().any(is_forbidden_in_name) {
        return Err(ErrorCode::InvalidName);
    }
    Ok(name)
}

/// Control characters and the bidirectional overrides that can disguise a name.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub(crate) fn pin(pin: &Secret) -> Result<(), ErrorCode> {
    let chars = pin.char_len();
    if chars == 0 || chars > MAX_PIN_CHARS {
        Err(ErrorCode::InvalidPin)
    } else {
        Ok(())
    }
}

/// Returns the chat text without surrounding white space.
pub(crate) fn chat_text(text: &str, max_chars: usize) -> Result<&str, ErrorCode> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ErrorCode::InvalidText);
    }
    if text.chars().count() > max_chars {
        return Err(ErrorCode::ChatTooLong);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids() {
        assert!(room_id("lage-zentrum_2").is_ok());
        assert_eq!(room_id(""), Err(ErrorCode::InvalidRoom));
        assert_eq!(room_id("a b"), Err(ErrorCode::InvalidRoom));
        assert_eq!(room_id("räume"), Err(ErrorCode::InvalidRoom));
        assert_eq!(room_id(&"a".repeat(65)), Err(ErrorCode::InvalidRoom));
        assert!(room_id(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn names() {
        assert_eq!(display_name("  Jürgen Groß "), Ok("Jürgen Groß"));
        assert_eq!(display_name("   "), Err(ErrorCode::InvalidName));
        assert_eq!(display_name("a\nb"), Err(ErrorCode::InvalidName));
        assert_eq!(display_name("evil\u{202E}gpj"), Err(ErrorCode::InvalidName));
        assert_eq!(display_name(&"ß".repeat(65)), Err(ErrorCode::InvalidName));
        assert!(display_name(&"ß".repeat(64)).is_ok());
    }

    #[test]
    fn pins_and_chat() {
        assert!(pin(&Secret::new("4711".into())).is_ok());
        assert_eq!(pin(&Secret::new(String::new())), Err(ErrorCode::InvalidPin));
        assert_eq!(
            pin(&Secret::new("1".repeat(33))),
            Err(ErrorCode::InvalidPin)
        );
        assert_eq!(chat_text(" hi ", 5), Ok("hi"));
        assert_eq!(chat_text(" \n", 5), Err(ErrorCode::InvalidText));
        assert_eq!(chat_text("123456", 5), Err(ErrorCode::ChatTooLong));
    }
}
