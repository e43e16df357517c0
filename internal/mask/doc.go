// Package mask recognises sensitive values in text and replaces them. It is
// shared by every protocol warden proxies (PostgreSQL, HTTP, Kubernetes) and
// therefore knows nothing about wire formats, SQL or policy syntax: a
// protocol decides *which* values need masking (a configured column, a JSON
// field, a Secret's data) and this package decides *what the masked value
// is*, and, for free text, *where the sensitive parts are*.
//
// # Pieces
//
//   - A [Detector] finds sensitive substrings in text and reports them as
//     byte [Span]s, sorted and non-overlapping. The built-in detectors are
//     named email, phone, credit_card, us_ssn, iban, ip, jwt, api_key and
//     private_key ([Builtin], [BuiltinNames]); [Regex] makes a custom one
//     from configuration.
//   - A [Masker] turns a value into its masked form in one of four styles
//     (redact, partial, hash, null), see [NewMasker]. [Masker.MaskSpans]
//     masks only the given spans of a text.
//   - A [Scanner] runs several detectors over a text, merges their hits and
//     masks them in one call ([Scanner.Redact]).
//
// All three are immutable once built and safe for concurrent use; build them
// once when the policy is loaded, never per value (issue 5, "Cost").
//
// # Precision and recall
//
// Detectors prefer recall where a miss would leak a value whose shape is
// unambiguous (a Luhn-valid card number with a known issuer prefix, a
// mod-97-valid IBAN, a PEM private key block, a JWT whose header decodes),
// and require context where the shape alone is ambiguous: nine bare digits
// are an SSN only after a label such as "SSN" (otherwise every order number
// would be masked), ten bare digits are never a phone number (they are as
// often a Unix timestamp), and an AWS secret key is recognised only next to
// its label. Each detector's comment lists what it deliberately does not
// match; the tests hold a table of true positives and near misses for each.
//
// # Cost
//
// Masking runs on every value of every column or field that needs it, so
// each built-in detector starts with a prefilter that costs less than
// reading the text again: one pass over the text gathers the counts all
// prefilters need (the longest run of digits and separators, digit-dot-digit
// triples, '@', colons, letter-letter-digit-digit heads, "ey"/"ew" at a
// token start, ...), and a Scanner makes that pass once per text for all of
// its built-in detectors. Only then does a hand-written matcher run. The
// matchers are linear in the text length; the only regular expression (the
// label of an AWS secret key) runs only on texts that contain "secret".
// Scanning a text that has nothing to mask normally allocates nothing
// (TestCleanAllocs); api_key has no count to check and instead looks only
// at bytes that can start one of its prefixes.
package mask
