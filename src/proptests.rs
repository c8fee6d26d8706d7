//! Property tests for everything that parses user text: durations, stages, threshold
//! expressions and keys, execution segments, `/track` bodies and `json.decode`. No input
//! may panic; where a printed form exists, printing and parsing again gives the same value.

use crate::exec::Segment;
use crate::options::{duration, Stage};
use crate::thresholds::parse::{parse_expr, parse_key};
use proptest::prelude::*;
use std::time::Duration;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn durations_never_panic(text in ".{0,24}") {
        let _ = duration::parse(&text);
    }

    #[test]
    fn durations_in_k6_notation_never_panic(text in "[0-9.]{1,8}(h|m|s|ms|us|µs|ns)?([0-9]{1,4}(h|m|s|ms))?") {
        let _ = duration::parse(&text);
    }

    #[test]
    fn formatted_durations_parse_back(ms in 0u64..10_000_000_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(duration::parse(&duration::format(d)), Ok(d));
    }

    #[test]
    fn stages_never_panic(text in ".{0,24}") {
        let _ = Stage::parse_cli(&text);
    }

    #[test]
    fn stages_parse_back(secs in 0u64..100_000, target in 0u64..1_000_000) {
        let text = format!("{}:{target}", duration::format(Duration::from_secs(secs)));
        let st = Stage::parse_cli(&text).unwrap();
        prop_assert_eq!((st.duration, st.target), (Duration::from_secs(secs), target));
    }

    #[test]
    fn threshold_expressions_never_panic(text in ".{0,32}") {
        let _ = parse_expr(&text);
    }

    #[test]
    fn threshold_expressions_of_k6s_shape_never_panic(
        text in "(avg|min|max|med|count|rate|value|p\\([0-9.]{0,6}\\))[ ]?(<|<=|>|>=|==|===|!=)[ ]?-?[0-9.e]{0,8}"
    ) {
        let _ = parse_expr(&text);
    }

    #[test]
    fn threshold_keys_never_panic(text in "[a-z_]{0,12}(\\{.{0,16}\\}?)?") {
        let _ = parse_key(&text);
    }

    #[test]
    fn segments_never_panic(text in ".{0,24}") {
        let _ = Segment::parse(&text);
    }

    #[test]
    fn segments_of_k6s_shape_never_panic(text in "[0-9/.%]{0,8}:[0-9/.%]{0,8}") {
        let _ = Segment::parse(&text);
    }

    #[test]
    fn printed_segments_parse_back(n in 1u64..64, i in 0u64..64) {
        let seg = Segment::nth(i % n, n);
        prop_assert_eq!(Segment::parse(&seg.to_string()), Ok(seg));
    }
}

#[test]
fn found_by_the_properties() {
    // A float sum made 35.538 s into 35.538000001 s; a huge bare number panicked.
    assert_eq!(
        duration::parse("2335h38m35.538s"),
        Ok(Duration::from_millis(8_408_315_538))
    );
    assert!(duration::parse("1e300").is_err());
    assert!(duration::parse("99999999999999999999999h").is_err());
    assert_eq!(duration::parse("1.5m"), Ok(Duration::from_secs(90)));
    assert!(duration::parse("1..5s").is_err());
}
