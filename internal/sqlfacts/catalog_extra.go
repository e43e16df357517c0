package sqlfacts

// gencatalog.sh reads the catalog of the PostgreSQL 15 found on the build
// machine. Warden also fronts PostgreSQL 16 and 17, whose pg_catalog has a
// few names that 15 lacks; they are kept here by hand (from the release
// notes of 16 and 17) so that an unqualified reference to them still
// resolves to pg_catalog, as the server would resolve it. Missing a name
// here fails closed: the reference resolves to <Schema>.<name>, which a
// policy is unlikely to allow.

// pgCatalogRelationNamesExtra are pg_catalog relations added after 15.
var pgCatalogRelationNamesExtra = []string{
	"pg_stat_io",           // 16
	"pg_stat_checkpointer", // 17
	"pg_wait_events",       // 17
}

// pgCatalogFunctionNamesExtra are pg_catalog functions added after 15.
var pgCatalogFunctionNamesExtra = []string{
	// 16
	"any_value",
	"array_sample",
	"array_shuffle",
	"date_add",
	"date_subtract",
	"erf",
	"erfc",
	"pg_input_error_info",
	"pg_input_is_valid",
	"pg_log_standby_snapshot",
	"pg_split_walfile_name",
	"pg_stat_get_io",
	"random_normal",
	"system_user",
	"xmltext",
	// 17
	"has_largeobject_privilege",
	"pg_available_wal_summaries",
	"pg_basetype",
	"pg_column_toast_chunk_id",
	"pg_get_wait_events",
	"pg_get_wal_summarizer_state",
	"pg_stat_get_checkpointer_buffers_written",
	"pg_stat_get_checkpointer_num_requested",
	"pg_stat_get_checkpointer_num_timed",
	"pg_sync_replication_slots",
	"pg_wal_summary_contents",
	"to_bin",
	"to_oct",
	"to_regtypemod",
	"unicode_assigned",
}
