package sqlfacts

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// SET and RESET.
//
// A setting an agent changes stays changed for the whole upstream session,
// so warden lets through only settings known to be harmless and refuses
// everything else (fail closed). Some settings are refused whatever their
// value because they change who the session is or how names and text are
// read:
//
//   - role, session_authorization: the upstream identity is warden's, not
//     the agent's (docs "SET ROLE", "SET SESSION AUTHORIZATION").
//   - search_path: warden resolves unqualified names against the pinned
//     path; a different path would make its facts wrong (docs 5.9.3).
//   - standard_conforming_strings, backslash_quote, escape_string_warning
//     at a non-default value, and client_encoding set to an encoding whose
//     multibyte characters can contain the bytes of ' or \ (SJIS, BIG5,
//     GBK, GB18030, JOHAB, UHC, SHIFT_JIS_2004; docs 24.3.1 lists them as
//     client-only encodings): either would make the server split string
//     literals differently from warden's parser (CVE-2006-2313/2314).
//   - session_replication_role: disables triggers and foreign keys.

// allowedSettings may be set to any value.
var allowedSettings = setOf([]string{
	// Client connection defaults (docs 20.11).
	"application_name", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "idle_session_timeout",
	"transaction_timeout", "datestyle", "intervalstyle", "timezone",
	"timezone_abbreviations", "extra_float_digits", "bytea_output",
	"xmlbinary", "xmloption", "client_min_messages", "lc_monetary",
	"lc_numeric", "lc_time", "default_text_search_config",
	"gin_fuzzy_search_limit", "default_transaction_isolation",
	"default_transaction_read_only", "default_transaction_deferrable",
	"transaction_isolation", "transaction_read_only",
	"transaction_deferrable", "array_nulls", "quote_all_identifiers",
	"synchronous_commit",
	// Resource use (docs 20.4).
	"work_mem", "hash_mem_multiplier", "maintenance_work_mem",
	"temp_buffers", "logical_decoding_work_mem",
	// Query planning (docs 20.7; enable_* is matched by prefix).
	"seq_page_cost", "random_page_cost", "cpu_tuple_cost",
	"cpu_index_tuple_cost", "cpu_operator_cost", "parallel_setup_cost",
	"parallel_tuple_cost", "min_parallel_table_scan_size",
	"min_parallel_index_scan_size", "effective_cache_size",
	"effective_io_concurrency", "maintenance_io_concurrency",
	"jit_above_cost", "jit_inline_above_cost", "jit_optimize_above_cost",
	"geqo", "geqo_threshold", "geqo_effort", "geqo_pool_size",
	"geqo_generations", "geqo_selection_bias", "geqo_seed",
	"default_statistics_target", "constraint_exclusion",
	"cursor_tuple_fraction", "from_collapse_limit", "join_collapse_limit",
	"plan_cache_mode", "recursive_worktable_factor", "jit",
	"max_parallel_workers_per_gather", "max_parallel_maintenance_workers",
	"parallel_leader_participation",
})

// refusedSettings are refused in any form: SET, SET LOCAL, SET ... FROM
// CURRENT, RESET.
var refusedSettings = map[string]string{
	"role":                     "SET ROLE would change the upstream role",
	"session_authorization":    "SET SESSION AUTHORIZATION would change the upstream role",
	"search_path":              "changing search_path is not allowed: warden resolves names against a pinned search_path",
	"session_replication_role": "session_replication_role disables triggers and foreign keys",
}

// unsafeClientEncodings are the normalised names (PostgreSQL's
// clean_encoding_name: lower case, letters and digits only) of the
// client-only encodings and their aliases (src/common/encnames.c).
var unsafeClientEncodings = setOf([]string{
	"sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004",
	"big5", "win950", "windows950", "gbk", "win936", "windows936", "cp936",
	"gb18030", "johab", "uhc", "win949", "windows949",
})

// setStmt decides a top-level SET or RESET and returns its kind.
func (a *analyzer) setStmt(s *pg_query.VariableSetStmt) string {
	kind := "set"
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		// The reset values are the startup-packet values warden sent.
		return "reset"
	case pg_query.VariableSetKind_VAR_RESET:
		kind = "reset"
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		// SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS
		// TRANSACTION ..., SET TRANSACTION SNAPSHOT: isolation level,
		// read only and deferrable, or a snapshot of another session.
		switch s.Name {
		case "TRANSACTION", "SESSION CHARACTERISTICS", "TRANSACTION SNAPSHOT":
		default:
			a.refuse("SET " + s.Name + " is not allowed")
		}
		return kind
	}
	// GUC names are case-insensitive (guc.c guc_name_compare), and a
	// quoted name keeps its case in the parse tree: SET "Search_Path".
	name := strings.ToLower(s.Name)
	if why, bad := refusedSettings[name]; bad {
		a.refuse(why)
		return kind
	}
	resetting := s.Kind == pg_query.VariableSetKind_VAR_RESET ||
		s.Kind == pg_query.VariableSetKind_VAR_SET_DEFAULT
	switch name {
	case "standard_conforming_strings", "escape_string_warning":
		if !resetting && !settingIs(s, isTrue) {
			a.refuse(name + " must stay on: the server would read string literals differently from warden")
		}
	case "backslash_quote":
		if !resetting && !settingIs(s, func(v string) bool { return v == "safe_encoding" }) {
			a.refuse("backslash_quote must stay safe_encoding: the server would read string literals differently from warden")
		}
	case "client_encoding":
		if !resetting && !settingIs(s, func(v string) bool { return !has(unsafeClientEncodings, cleanEncodingName(v)) }) {
			a.refuse("client_encoding " + settingText(s) + " is not allowed: its multibyte characters can hide quotes and backslashes from warden's parser")
		}
	default:
		if !has(allowedSettings, name) && !strings.HasPrefix(name, "enable_") {
			a.refuse("setting " + name + " is not on warden's list of settings an agent may change")
		}
	}
	return kind
}

// settingIs reports whether s sets exactly one constant value for which ok
// is true. The value is lower-cased.
func settingIs(s *pg_query.VariableSetStmt, ok func(string) bool) bool {
	if s.Kind != pg_query.VariableSetKind_VAR_SET_VALUE || len(s.Args) != 1 {
		return false
	}
	v, isConst := constText(s.Args[0])
	return isConst && ok(strings.ToLower(v))
}

func settingText(s *pg_query.VariableSetStmt) string {
	if len(s.Args) == 1 {
		if v, ok := constText(s.Args[0]); ok {
			return v
		}
	}
	return "(expression)"
}

// constText renders an A_Const as the text PostgreSQL would hand to the
// setting's parser.
func constText(n *pg_query.Node) (string, bool) {
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return "", false
	}
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Sval:
		return v.Sval.GetSval(), true
	case *pg_query.A_Const_Ival:
		if v.Ival.GetIval() == 1 {
			return "1", true
		}
		if v.Ival.GetIval() == 0 {
			return "0", true
		}
		return "", false
	case *pg_query.A_Const_Boolval:
		if v.Boolval.GetBoolval() {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

// isTrue is PostgreSQL's parse_bool (src/backend/utils/adt/bool.c) for a
// true value: any unique prefix of "true", "yes", "on" (at least "on"),
// or "1".
func isTrue(v string) bool {
	switch {
	case v == "":
		return false
	case strings.HasPrefix("true", v), strings.HasPrefix("yes", v):
		return true
	case v == "on", v == "1":
		return true
	}
	return false
}

// cleanEncodingName is clean_encoding_name from src/common/encnames.c.
func cleanEncodingName(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
