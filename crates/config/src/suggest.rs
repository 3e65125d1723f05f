//! "Did you mean": the known name nearest to a mistyped one, when it is
//! near enough to be the likely intent (`confMAX_MESAGE_SIZE` →
//! `confMAX_MESSAGE_SIZE`), and nothing when none is.

/// The candidate closest to `typed` (case aside) within a few edits.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_ascii_lowercase();
    // One edit in six characters, at least two: a slip, not another word.
    let allowed = (typed.len() / 6).max(2);
    candidates
        .into_iter()
        // The distance is at least the difference in length: a candidate
        // too long or too short is no slip, and costs nothing to rule
        // out (a long line of garbage would otherwise be compared with
        // every name, at the cost of both lengths multiplied).
        .filter(|c| c.len().abs_diff(typed.len()) <= allowed)
        // Each edit changes the letters present by at most one, so the
        // letters alone rule most names out, at a fraction of the cost.
        .filter(|c| bag_distance(&typed_lower, c) <= allowed)
        .map(|c| {
            // Optimal string alignment: a swap of neighbours is one edit,
            // as in Damerau-Levenshtein, without its per-call hash map.
            let distance = strsim::osa_distance(&typed_lower, &c.to_ascii_lowercase());
            (distance, c)
        })
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// How many letters (case aside) one string has that the other lacks, the
/// larger way round: a lower bound of the edit distance.
fn bag_distance(a: &str, b: &str) -> usize {
    let mut counts = [0u16; 256];
    for byte in a.bytes() {
        let slot = &mut counts[usize::from(byte.to_ascii_lowercase())];
        *slot = slot.saturating_add(1);
    }
    let mut common = 0;
    for byte in b.bytes() {
        let slot = &mut counts[usize::from(byte.to_ascii_lowercase())];
        if *slot > 0 {
            *slot -= 1;
            common += 1;
        }
    }
    (a.len() - common).max(b.len() - common)
}

/// `; did you mean "X"?` for an error message, or nothing.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, candidates)
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        let names = ["confMAX_MESSAGE_SIZE", "confLOG_LEVEL", "confPRIVACY_FLAGS"];
        assert_eq!(
            closest("confMAX_MESAGE_SIZE", names),
            Some("confMAX_MESSAGE_SIZE")
        );
        assert_eq!(closest("conflog_level", names), Some("confLOG_LEVEL"));
        assert_eq!(closest("confTO_IDENT", names), None);
        assert_eq!(closest("esmpt", ["esmtp", "smtp", "relay"]), Some("esmtp"));
        assert_eq!(closest("bogus", ["esmtp", "smtp", "relay"]), None);
        // Much longer or shorter: never near.
        assert_eq!(closest(&"x".repeat(5000), names), None);
        assert_eq!(closest("conf", names), None);
    }

    #[test]
    fn the_letter_count_bound_never_exceeds_the_distance() {
        for (a, b) in [
            ("esmpt", "esmtp"),
            ("confmax_mesage_size", "confMAX_MESSAGE_SIZE"),
            ("abc", "xyz"),
            ("", "abc"),
        ] {
            let bound = super::bag_distance(a, b);
            let distance = strsim::osa_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase());
            assert!(bound <= distance, "{a} {b}: {bound} > {distance}");
        }
    }
}
