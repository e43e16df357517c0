package sqlfacts

// safeFunctions are pg_catalog functions an agent may call without an
// explicit `execute` grant: ordinary built-ins that compute a value from
// their arguments (or read the clock, the session's own identity or
// settings) and can neither change state, read files, run SQL given as a
// string, wait, signal other backends, nor read a relation named by an
// argument. Everything else — user-defined functions and the built-ins
// that can do one of those things (pg_read_file, lo_import, nextval,
// pg_sleep, query_to_xml, pg_terminate_backend, dblink, ...) — needs an
// Execute access on schema.name, so a policy has to name it.
//
// The list is deliberately conservative: a built-in missing here is denied
// unless granted, which is the failure mode we want. TestSafeFunctionsExist
// checks every name against the generated pg_catalog list.
//
// set_config is not here and is refused outright (it can change
// search_path and role; see settings.go).
var safeFunctions = setOf([]string{
	// Aggregates (docs 9.21).
	"array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or",
	"count", "every", "json_agg", "json_object_agg", "jsonb_agg",
	"jsonb_object_agg", "max", "min", "range_agg", "range_intersect_agg",
	"string_agg", "sum", "xmlagg", "any_value",
	"corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count",
	"regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
	"regr_syy", "stddev", "stddev_pop", "stddev_samp", "var_pop", "var_samp",
	"variance", "mode", "percentile_cont", "percentile_disc",

	// Window functions (docs 9.22).
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	"lag", "lead", "first_value", "last_value", "nth_value",

	// Mathematical (docs 9.3).
	"abs", "cbrt", "ceil", "ceiling", "degrees", "div", "exp", "factorial",
	"floor", "gcd", "lcm", "ln", "log", "log10", "min_scale", "mod", "pi",
	"power", "radians", "random", "round", "scale", "sign", "sqrt",
	"trim_scale", "trunc", "width_bucket", "acos", "acosd", "asin", "asind",
	"atan", "atand", "atan2", "atan2d", "cos", "cosd", "cot", "cotd", "sin",
	"sind", "tan", "tand", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
	"erf", "erfc", "random_normal",

	// Strings and bytes (docs 9.4, 9.5, 9.7).
	"ascii", "bit_length", "btrim", "char_length", "character_length", "chr",
	"concat", "concat_ws", "convert_from", "convert_to", "decode", "encode",
	"format", "initcap", "left", "length", "lower", "lpad", "ltrim", "md5",
	"normalize", "is_normalized", "octet_length", "overlay", "position",
	"quote_ident", "quote_literal", "quote_nullable", "regexp_count",
	"regexp_instr", "regexp_like", "regexp_match", "regexp_matches",
	"regexp_replace", "regexp_split_to_array", "regexp_split_to_table",
	"regexp_substr", "repeat", "replace", "reverse", "right", "rpad", "rtrim",
	"split_part", "starts_with", "string_to_array", "string_to_table",
	"strpos", "substr", "substring", "to_ascii", "to_hex", "translate",
	"unistr", "upper", "sha224", "sha256", "sha384", "sha512", "get_bit",
	"get_byte", "set_bit", "set_byte", "bit_count", "similar_to_escape",
	"like_escape", "to_bin", "to_oct", "text", "textlen",

	// Formatting (docs 9.8).
	"to_char", "to_date", "to_number", "to_timestamp",

	// Date and time (docs 9.9).
	"age", "clock_timestamp", "date_bin", "date_part", "date_trunc",
	"extract", "isfinite", "justify_days", "justify_hours",
	"justify_interval", "make_date", "make_interval", "make_time",
	"make_timestamp", "make_timestamptz", "now", "statement_timestamp",
	"timeofday", "transaction_timestamp", "timezone", "overlaps", "date_add",
	"date_subtract",

	// Enums, ranges, arrays (docs 9.10, 9.19, 9.20).
	"enum_first", "enum_last", "enum_range", "array_append", "array_cat",
	"array_dims", "array_fill", "array_length", "array_lower", "array_ndims",
	"array_position", "array_positions", "array_prepend", "array_remove",
	"array_replace", "array_sample", "array_shuffle", "array_to_string",
	"array_upper", "cardinality", "trim_array", "unnest",
	"generate_series", "generate_subscripts", "int4range", "int8range",
	"numrange", "tsrange", "tstzrange", "daterange", "int4multirange",
	"int8multirange", "nummultirange", "tsmultirange", "tstzmultirange",
	"datemultirange", "isempty", "lower_inc", "upper_inc", "lower_inf",
	"upper_inf", "range_merge", "multirange",

	// JSON (docs 9.16).
	"array_to_json", "json_array_elements", "json_array_elements_text",
	"json_array_length", "json_build_array", "json_build_object",
	"json_each", "json_each_text", "json_extract_path",
	"json_extract_path_text", "json_object", "json_object_keys",
	"json_populate_record", "json_populate_recordset", "json_strip_nulls",
	"json_to_record", "json_to_recordset", "json_typeof",
	"jsonb_array_elements", "jsonb_array_elements_text",
	"jsonb_array_length", "jsonb_build_array", "jsonb_build_object",
	"jsonb_each", "jsonb_each_text", "jsonb_extract_path",
	"jsonb_extract_path_text", "jsonb_insert", "jsonb_object",
	"jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match",
	"jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
	"jsonb_populate_record", "jsonb_populate_recordset", "jsonb_pretty",
	"jsonb_set", "jsonb_set_lax", "jsonb_strip_nulls", "jsonb_to_record",
	"jsonb_to_recordset", "jsonb_typeof", "row_to_json", "to_json",
	"to_jsonb",

	// Text search (docs 9.13); ts_stat and ts_rewrite are excluded: they can
	// run a query given as a string.
	"to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery",
	"websearch_to_tsquery", "ts_rank", "ts_rank_cd", "ts_headline",
	"setweight", "strip", "numnode", "querytree", "tsvector_to_array",
	"array_to_tsvector", "ts_delete", "ts_filter",

	// UUID, network, XML values (docs 9.12, 9.14, 9.15). The *_to_xml
	// functions that run queries are excluded.
	"gen_random_uuid", "abbrev", "broadcast", "family", "host", "hostmask",
	"inet_merge", "inet_same_family", "masklen", "netmask", "network",
	"set_masklen", "xpath", "xpath_exists", "xml_is_well_formed",
	"xml_is_well_formed_content", "xml_is_well_formed_document",
	"xmlcomment", "xmltext", "xmlexists",

	// Comparison and type helpers (docs 9.2, 9.26).
	"num_nonnulls", "num_nulls", "pg_typeof", "format_type",
	"pg_column_size", "pg_size_pretty", "pg_size_bytes", "to_regtype",
	"pg_collation_for", "pg_input_is_valid", "pg_input_error_info",
	"bool", "int2", "int4", "int8", "float4", "float8", "numeric", "date",
	"time", "timestamp", "timestamptz", "interval", "varchar", "bpchar",

	// Session information (docs 9.26.1): the session's own identity,
	// clock and settings, which SHOW and SQL value functions give anyway.
	"current_database", "current_schema", "current_schemas",
	"current_setting", "current_query", "inet_client_addr",
	"inet_client_port", "pg_backend_pid", "pg_current_xact_id",
	"txid_current", "pg_postmaster_start_time", "pg_conf_load_time",
	"pg_trigger_depth", "version", "system_user", "pg_jit_available",
})
