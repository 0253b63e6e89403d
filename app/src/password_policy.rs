//! The password policy: a length range, then refusal of passwords that are common or trivially
//! guessable (one repeated character, simple sequences, keyboard walks, the email's local part,
//! the firm's name). Pure: a decision on text, with a message that says what to do instead.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The most characters a password may have (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Common passwords and stems, one per line (see the file's header).
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

/// Rows and columns of a US keyboard, and the digit row, walked in either direction.
const KEYBOARD_WALKS: &[&str] = &[
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]",
    "qazwsxedcrfvtgbyhnujmik,ol.p;/",
    "1q2w3e4r5t6y7u8i9o0p",
    "qawsedrftgyhujikolp;",
];

/// Why a password was refused. Each message completes "<field> ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("is too long: at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("is one of the most common passwords (or one with digits, symbols or look-alike characters added); choose something less predictable, such as three or four unrelated words")]
    Common,
    #[error("repeats the same character or a short group of characters; choose something less predictable, such as three or four unrelated words")]
    Repetitive,
    #[error("is a simple sequence or keyboard walk (like 1234567890, abcdefghij or qwertyuiop); choose something less predictable, such as three or four unrelated words")]
    Sequence,
    #[error("is built from your email address; choose something unrelated to your email")]
    ContainsEmail,
    #[error("is built from the firm's name; choose something unrelated to the firm")]
    ContainsFirmName,
}

/// What the policy compares a password with besides its own text.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    pub email: Option<&'a str>,
    pub firm_name: Option<&'a str>,
}

/// Checks a proposed password; `Ok` means it may be used.
pub fn check_password(password: &str, context: PasswordContext<'_>) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Err(PolicyViolation::TooShort);
    }
    if length > MAX_PASSWORD_CHARS {
        return Err(PolicyViolation::TooLong);
    }
    let compact: String = password
        .chars()
        .filter(|ch| !ch.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if let Some(violation) = guessable(&compact) {
        return Err(violation);
    }
    if let Some(email) = context.email {
        let local_part = email.split('@').next().unwrap_or_default();
        if is_built_from(&compact, &personal_tokens(local_part)) {
            return Err(PolicyViolation::ContainsEmail);
        }
    }
    if let Some(firm_name) = context.firm_name {
        if is_built_from(&compact, &personal_tokens(firm_name)) {
            return Err(PolicyViolation::ContainsFirmName);
        }
    }
    Ok(())
}

/// The context-free rules, on lowercase text without spaces.
fn guessable(compact: &str) -> Option<PolicyViolation> {
    if is_common(compact) {
        return Some(PolicyViolation::Common);
    }
    if let Some(unit) = repeated_unit(compact) {
        if unit.chars().count() <= 4 || guessable(unit).is_some() {
            return Some(PolicyViolation::Repetitive);
        }
    }
    if is_sequence_or_walk(compact) {
        return Some(PolicyViolation::Sequence);
    }
    None
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Leading and trailing characters that are not letters: the "2024!" of "summer2024!".
fn trim_decoration(text: &str) -> &str {
    text.trim_matches(|ch: char| !ch.is_alphabetic())
}

/// Undoes the usual look-alike swaps (p@ssw0rd → password).
fn undo_lookalikes(text: &str) -> String {
    text.chars()
        .map(|ch| match ch {
            '0' => 'o',
            '1' | '!' | '|' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' | '+' => 't',
            '8' => 'b',
            '9' => 'g',
            other => other,
        })
        .collect()
}

fn is_common(compact: &str) -> bool {
    let common = common_passwords();
    let trimmed = trim_decoration(compact);
    let lookalikes = undo_lookalikes(compact);
    // Undo look-alikes only inside the word: trailing digits stay digits ("p@ss1234" → "pass").
    let lookalikes_trimmed = undo_lookalikes(trimmed);
    let inner = compact.trim_matches(|ch: char| ch.is_ascii_digit() || ch.is_ascii_punctuation());
    [
        compact,
        trimmed,
        lookalikes.as_str(),
        trim_decoration(&lookalikes),
        lookalikes_trimmed.as_str(),
        undo_lookalikes(inner).as_str(),
    ]
    .iter()
    .any(|candidate| !candidate.is_empty() && common.contains(candidate))
}

/// The shortest unit the whole text repeats (at least twice), if it is a repetition.
fn repeated_unit(text: &str) -> Option<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let length = chars.len();
    (1..=length / 2)
        .filter(|unit| length % unit == 0)
        .find(|&unit| (unit..length).all(|index| chars[index].1 == chars[index - unit].1))
        .map(|unit| &text[..chars[unit].0])
}

/// True when `next` follows `previous` predictably: the same character, the next or previous
/// letter or digit, or a neighbour on the keyboard.
fn follows_predictably(previous: char, next: char) -> bool {
    if previous == next {
        return true;
    }
    let both_digits = previous.is_ascii_digit() && next.is_ascii_digit();
    let both_letters = previous.is_ascii_lowercase() && next.is_ascii_lowercase();
    if (both_digits || both_letters) && (previous as i32 - next as i32).abs() == 1 {
        return true;
    }
    KEYBOARD_WALKS.iter().any(|walk| {
        let keys: Vec<char> = walk.chars().collect();
        keys.windows(2).any(|pair| {
            (pair[0] == previous && pair[1] == next) || (pair[1] == previous && pair[0] == next)
        })
    })
}

/// Sequences and walks: nearly every character follows the one before it predictably.
fn is_sequence_or_walk(compact: &str) -> bool {
    let chars: Vec<char> = compact.chars().collect();
    let unpredictable = chars
        .windows(2)
        .filter(|pair| !follows_predictably(pair[0], pair[1]))
        .count();
    unpredictable <= chars.len() / 5
}

/// The parts of an email's local part or a firm's name a password must not be built from:
/// the whole (letters and digits only) and each word of at least four characters, longest first.
fn personal_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut tokens: Vec<String> = lower
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|word| word.chars().count() >= 4)
        .map(str::to_string)
        .collect();
    let whole: String = lower.chars().filter(|ch| ch.is_alphanumeric()).collect();
    if whole.chars().count() >= 3 {
        tokens.push(whole);
    }
    tokens.sort_by_key(|token| std::cmp::Reverse(token.chars().count()));
    tokens
}

/// True when `compact` contains one of `tokens` and what is left once every token is taken out
/// is trivial (fewer than four characters besides digits and symbols) or guessable on its own.
fn is_built_from(compact: &str, tokens: &[String]) -> bool {
    let plain = undo_lookalikes(compact);
    [compact, plain.as_str()].iter().any(|candidate| {
        let mut rest = candidate.to_string();
        let mut found = false;
        for token in tokens {
            if rest.contains(token.as_str()) {
                found = true;
                rest = rest.replace(token.as_str(), "");
            }
        }
        found && {
            let core = trim_decoration(&rest);
            core.chars().count() < 4 || guessable(core).is_some()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(password: &str) -> Result<(), PolicyViolation> {
        check_password(password, PasswordContext::default())
    }

    #[test]
    fn strong_passphrases_pass() {
        for password in [
            "correct horse battery staple",
            "correct horse battery",
            "member password 123",
            "another long password",
            "Tr0ub4dor&3 plus more",
            "7vQ2mZp9xLk4",
            "a violet kettle hums",
        ] {
            assert_eq!(verdict(password), Ok(()), "{password}");
        }
    }

    #[test]
    fn length_is_bounded_both_ways() {
        assert_eq!(verdict("short"), Err(PolicyViolation::TooShort));
        assert_eq!(verdict(&"x7".repeat(600)), Err(PolicyViolation::TooLong));
    }

    #[test]
    fn common_passwords_and_their_decorations_are_refused() {
        for password in [
            "password12",
            "Password123!",
            "P@ssw0rd2024",
            "qwerty123456",
            "iloveyou!!!",
            "football1234",
            "  letmein 2025 ",
            "Summer2024!!",
        ] {
            assert_eq!(
                verdict(password),
                Err(PolicyViolation::Common),
                "{password}"
            );
        }
    }

    #[test]
    fn repetitions_are_refused() {
        assert_eq!(verdict("aaaaaaaaaa"), Err(PolicyViolation::Repetitive));
        assert_eq!(verdict("abcabcabcabc"), Err(PolicyViolation::Repetitive));
        assert_eq!(verdict("xy!zxy!zxy!z"), Err(PolicyViolation::Repetitive));
        assert_eq!(
            verdict("passwordpassword"),
            Err(PolicyViolation::Repetitive)
        );
    }

    #[test]
    fn sequences_and_keyboard_walks_are_refused() {
        for password in [
            "1234567890",
            "123456789012",
            "abcdefghijk",
            "9876543210",
            "zyxwvutsrq",
            "qwertyuiop",
            "poiuytrewq",
            "asdfghjkl;",
            "1qaz2wsx3edc",
            "zxcvbnm,./",
            "qwertyqwerty1",
        ] {
            assert!(verdict(password).is_err(), "{password}");
        }
        assert_eq!(verdict("mnbvcxzlkj"), Err(PolicyViolation::Sequence));
    }

    #[test]
    fn the_email_and_the_firm_name_are_refused() {
        let context = PasswordContext {
            email: Some("avery.admin@riverahale.test"),
            firm_name: Some("Rivera & Hale LLP"),
        };
        assert_eq!(
            check_password("averyadmin2024", context),
            Err(PolicyViolation::ContainsEmail)
        );
        assert_eq!(
            check_password("Avery!!1234567", context),
            Err(PolicyViolation::ContainsEmail)
        );
        assert_eq!(
            check_password("riverahale!!", context),
            Err(PolicyViolation::ContainsFirmName)
        );
        assert_eq!(
            check_password("Rivera 2025 !!", context),
            Err(PolicyViolation::ContainsFirmName)
        );
        assert_eq!(
            check_password("correct horse battery staple", context),
            Ok(())
        );
        assert_eq!(
            check_password("rivera drinks violet kettles", context),
            Ok(())
        );
    }

    #[test]
    fn every_violation_says_what_to_do() {
        for violation in [
            PolicyViolation::Common,
            PolicyViolation::Repetitive,
            PolicyViolation::Sequence,
        ] {
            assert!(violation.to_string().contains("choose"), "{violation}");
        }
    }
}
