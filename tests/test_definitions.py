"""A snapshot of the graph: any added, renamed or removed asset, check, job, schedule or sensor shows up here."""

import dagster as dg

from ingest_platform.definitions import defs

ASSET_KEYS = {
    "app/metrics/author_metric_daily",
    "app/metrics/leaderboards",
    "app/metrics/rule_metric_daily",
    "app/raw/audit_log",
    "app/raw/crawl_items",
    "app/raw/donations",
    "app/raw/events",
    "app/raw/rules",
    "app/search/rules_index",
    "bigtop/raw/collected_events",
    "bigtop/raw/pushed_events",
    "rtarf/raw/events",
    "vivenu/delivery/charity_webhooks",
    "vivenu/raw/tickets",
}
ASSET_CHECK_KEYS = {
    "app/raw/audit_log:landing_stream_health",
    "app/raw/crawl_items:landing_stream_health",
    "app/raw/donations:landing_stream_health",
    "app/raw/events:landing_stream_health",
    "bigtop/raw/pushed_events:landing_stream_health",
    "app/metrics/author_metric_daily:author_totals_match_rules",
    "app/metrics/author_metric_daily:donation_totals_match_donations",
    "app/metrics/leaderboards:board_ranks_are_dense",
    "app/metrics/leaderboards:yesterday_is_final",
    "app/metrics/rule_metric_daily:metrics_reconcile_with_events",
    "app/metrics/rule_metric_daily:view_cap_holds",
    "app/raw/donations:donation_amounts_non_negative",
    "app/raw/donations:no_duplicate_stripe_event_ids",
    "app/raw/events:no_duplicate_idempotency_keys",
    "rtarf/raw/events:rejected_documents",
}
JOBS = {
    "__ASSET_JOB",
    "app_audit_log_load_job",
    "app_crawl_items_load_job",
    "app_donations_load_job",
    "app_events_load_job",
    "app_rules_load_job",
    "app_search_index_job",
    "app_rollup_job",
    "bigtop_collect_job",
    "bigtop_probe",
    "bigtop_push_load_job",
    "bigtop_push_to_production_job",
    "rtarf_sync_job",
    "vivenu_pull_job",
    "vivenu_sync_job",
}
SCHEDULES = {
    "app_rollup_schedule",
    "bigtop_collect_schedule",
    "rtarf_sync_schedule",
}
SENSORS = {
    "app_audit_landing_sensor",
    "app_crawl_items_landing_sensor",
    "app_events_landing_sensor",
    "app_rules_landing_sensor",
    "app_search_automation_sensor",
    "app_rollup_sensor",
    "app_stripe_events_landing_sensor",
    "bigtop_landing_sensor",
    "rtarf_run_failure_sensor",
    "rtarf_run_success_sensor",
    "vivenu_event_list_sensor",
}


def repository() -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def test_asset_keys() -> None:
    assert {key.to_user_string() for key in repository().asset_graph.get_all_asset_keys()} == ASSET_KEYS


def test_asset_check_keys() -> None:
    checks = repository().asset_graph.asset_check_keys
    assert {f"{check.asset_key.to_user_string()}:{check.name}" for check in checks} == ASSET_CHECK_KEYS


def test_jobs_schedules_and_sensors() -> None:
    repo = repository()
    assert set(repo.job_names) == JOBS
    assert {schedule.name for schedule in repo.schedule_defs} == SCHEDULES
    assert {sensor.name for sensor in repo.sensor_defs} == SENSORS


def test_asset_keys_follow_source_layer_table_and_group_by_source() -> None:
    for asset_key in repository().asset_graph.get_all_asset_keys():
        node = repository().asset_graph.get(asset_key)
        assert len(asset_key.path) == 3, asset_key
        assert node.group_name == asset_key.path[0], asset_key
