//! Percent-decoding (`%XX`, either case) of text from outside: request
//! paths, providers' error texts.

/// `text`'s bytes with every `%XX` escape undone; a `%` not followed by two
/// hex digits is kept as it is.
pub fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_of_either_case_are_undone_and_the_rest_kept() {
        assert_eq!(
            super::decode("100% sure %zz %41%2b%2F"),
            b"100% sure %zz A+/"
        );
        assert_eq!(super::decode("%C3%A9"), "é".as_bytes());
        assert_eq!(super::decode("%ff"), vec![0xff]);
        assert_eq!(super::decode("%4"), b"%4");
    }
}
