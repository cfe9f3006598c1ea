"""The demo API's tenants (demo_api/tenants.py): each tenant's routes under /t/<tenant> serve its
own data to its own key only, its faults touch it alone, and what reached it is recorded."""

import threading
import time

import pytest
import requests

from restsync_dagster.cli import build_parser
from restsync_dagster.cli.common import CliError
from restsync_dagster.cli.demo import _demo_api_config
from restsync_dagster.demo_api.data import VERTICALS
from restsync_dagster.demo_api.tenants import ID_STRIDE, tenant_api_key
from restsync_dagster_tests.helpers import assert_tenant_budgets_kept, tenants_requesting_at_once


def get(api, tenant, path, key=None, headers=None, **params):
    if key is not None:
        params["api_key"] = key
    return requests.get(api.tenant_url(tenant) + path, params=params, headers=headers, timeout=10)


def all_rows(api, tenant, path, key):
    rows, offset = [], 0
    while True:
        page = get(api, tenant, path, key, offset=offset, limit=100).json()
        rows += page["data"]
        offset += 100
        if offset >= page["total"]:
            return rows


def test_each_tenant_serves_its_own_records_with_the_same_ids_and_other_content(start_demo_api):
    config = {"tenants": ("acme", "globex"), "counts": {"acme:generic.items": 30, "*": 120}}
    api = start_demo_api(**config)
    acme = all_rows(api, "acme", "/generic/v1/items", api.tenant_key("acme"))
    globex = all_rows(api, "globex", "/generic/v1/items", api.tenant_key("globex"))
    plain = requests.get(
        api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"}, timeout=10
    ).json()["data"]

    assert [r["id"] for r in acme] == list(range(1, 31)), "the tenant's own count"
    assert [r["id"] for r in globex] == list(range(1, 121))
    for theirs in (globex[:30], plain[:30]):
        differing = [a["id"] for a, b in zip(acme, theirs, strict=True) if a != b]
        assert differing == [r["id"] for r in acme], "every record tells its tenant apart"
    assert acme == api.expected_rows("generic", "items", tenant="acme")
    assert globex == api.expected_rows("generic", "items", tenant="globex")
    again = start_demo_api(**config)
    assert all_rows(again, "acme", "/generic/v1/items", again.tenant_key("acme")) == acme


def test_distinct_ids_give_each_tenant_its_own_range_down_to_child_routes(start_demo_api):
    api = start_demo_api(tenants=("acme", "globex"), tenant_ids="distinct")
    key = api.tenant_key("globex")
    orders = get(api, "globex", "/ecommerce/v1/orders", key, limit=2).json()["data"]
    assert [o["id"] for o in orders] == [2 * ID_STRIDE + 1, 2 * ID_STRIDE + 2]
    lines = get(api, "globex", f"/ecommerce/v1/orders/{orders[0]['id']}/lines", key).json()
    assert {line["order_id"] for line in lines["data"]} == {orders[0]["id"]}
    databases = get(api, "globex", "/database/v1/databases", key).json()["data"]
    first = databases[0]["id"]
    records = get(api, "globex", f"/database/v1/databases/{first}/records", key, limit=5).json()
    assert {r["database_id"] for r in records["data"]} == {first}
    served = {r["id"] for r in records["data"]}
    assert served <= {r["id"] for r in api.expected_rows("database", "records", tenant="globex")}
    acme_ids = {r["id"] for r in api.expected_rows("ecommerce", "orders", tenant="acme")}
    assert acme_ids.isdisjoint(r["id"] for r in api.expected_rows("ecommerce", "orders"))
    assert acme_ids.isdisjoint(
        r["id"] for r in api.expected_rows("ecommerce", "orders", tenant="globex")
    )


def test_only_a_tenants_own_key_opens_its_routes_and_another_tenants_key_is_recorded(
    start_demo_api,
):
    api = start_demo_api(tenants=("acme", "globex"))
    acme, globex = api.tenant_key("acme"), api.tenant_key("globex")
    assert acme != globex and acme.startswith("tk_acme_")
    assert acme == tenant_api_key(api.config.seed, "acme"), "known without asking the server"
    assert get(api, "acme", "/generic/v1/items", acme).status_code == 200
    assert get(api, "acme", "/generic/v1/items", headers={"Authorization": f"Bearer {acme}"}).ok
    assert get(api, "acme", "/generic/v1/items", headers={"X-API-Key": acme}).ok
    assert get(api, "acme", "/generic/v1/items", globex).status_code == 401
    assert get(api, "acme", "/generic/v1/items", "demo-generic-key").status_code == 401
    assert get(api, "acme", "/generic/v1/items").status_code == 401
    plain = requests.get(api.url("generic") + "/v1/items", params={"api_key": acme}, timeout=10)
    assert plain.status_code == 401, "a tenant's key opens only its own routes"
    assert get(api, "initech", "/generic/v1/items", acme).status_code == 404

    records = api.tenant_records()
    assert records["acme"]["requests"] == 6
    assert records["acme"]["keys_seen"] == {"acme": 3, "globex": 1, "none": 1, "unknown": 1}
    assert records["acme"]["cross_tenant"] == {"globex": 1}
    assert records["acme"]["cross_tenant_attempts"] == 1
    assert records["globex"]["key_used_on"] == {"acme": 1}
    assert records["acme"]["key_used_on"] == {"plain": 1, "initech": 1}
    assert records["globex"]["requests"] == 0
    assert requests.get(api.url() + "/_demo/tenants", timeout=10).json()["tenants"] == records
    keys = {acme, globex}
    assert not any(k in str(records) for k in keys), "the record names owners, never keys"
    api.reset_log()
    assert api.tenant_records()["acme"]["requests"] == 0


def test_a_tenant_added_at_run_time_is_served_with_its_own_key(start_demo_api):
    api = start_demo_api(tenants=("acme",))
    assert get(api, "initech", "/generic/v1/items", api.tenant_key("initech")).status_code == 404
    added = requests.post(
        api.url() + "/_demo/tenants/add", params={"tenant": "initech"}, timeout=10
    )
    assert added.json() == {
        "tenant": "initech",
        "added": True,
        "api_key": api.tenant_key("initech"),
        "path": "/t/initech",
    }
    rows = all_rows(api, "initech", "/generic/v1/items", api.tenant_key("initech"))
    assert rows == api.expected_rows("generic", "items", tenant="initech")
    assert api.tenants == ["acme", "initech"]
    again = requests.post(
        api.url() + "/_demo/tenants/add", params={"tenant": "initech"}, timeout=10
    )
    assert again.json()["added"] is False
    bad = requests.post(api.url() + "/_demo/tenants/add", params={"tenant": "Bad Name"}, timeout=10)
    assert bad.status_code == 400 and "lowercase" in bad.json()["error"]


def test_a_revoked_key_answers_401_while_the_other_tenants_answer(start_demo_api):
    api = start_demo_api(tenants=("acme", "globex"))
    acme, globex = api.tenant_key("acme"), api.tenant_key("globex")
    revoke = requests.post(
        api.url() + "/_demo/tenants/revoke", params={"tenant": "acme"}, timeout=10
    )
    assert revoke.json() == {"tenant": "acme", "revoked": True}
    assert get(api, "acme", "/generic/v1/items", acme).status_code == 401
    assert get(api, "globex", "/generic/v1/items", globex).status_code == 200
    assert api.tenant_records()["acme"]["revoked"] is True
    api.revoke_tenant("acme", revoked=False)
    assert get(api, "acme", "/generic/v1/items", acme).status_code == 200
    unknown = requests.post(api.url() + "/_demo/tenants/revoke", params={"tenant": "x"}, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"] == "no tenant 'x'"


def test_a_tenant_outage_answers_503_for_that_tenant_alone_then_heals(start_demo_api):
    api = start_demo_api(tenants=("acme", "globex"))
    acme, globex = api.tenant_key("acme"), api.tenant_key("globex")
    outage = requests.post(
        api.url() + "/_demo/tenants/outage",
        params={"tenant": "acme", "seconds": "1.0", "retry_after": "2"},
        timeout=10,
    )
    assert outage.status_code == 200
    down = get(api, "acme", "/generic/v1/items", acme)
    assert (down.status_code, down.headers["Retry-After"]) == (503, "2")
    assert get(api, "globex", "/generic/v1/items", globex).status_code == 200
    plain = requests.get(
        api.url("generic") + "/v1/items", params={"api_key": "demo-generic-key"}, timeout=10
    )
    assert plain.status_code == 200
    time.sleep(1.1)
    assert get(api, "acme", "/generic/v1/items", acme).status_code == 200
    assert api.tenant_records()["acme"]["statuses"] == {"200": 1, "503": 1}


def test_each_tenants_key_has_its_own_rate_budget(start_demo_api):
    # A window long enough that the whole test falls in the first one of every key.
    api = start_demo_api(tenants=("acme", "globex"), rate_limit=3, rate_window_seconds=30)
    acme, globex = api.tenant_key("acme"), api.tenant_key("globex")
    answers = [get(api, "acme", "/generic/v1/items", acme) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert get(api, "globex", "/generic/v1/items", globex).status_code == 200
    records = api.tenant_records()
    assert (records["acme"]["rate_limited"], records["globex"]["rate_limited"]) == (1, 0)
    assert (records["acme"]["rate_windows"], records["globex"]["rate_windows"]) == ([4], [1])
    with pytest.raises(AssertionError, match="acme: 1 429s"):
        assert_tenant_budgets_kept(api, limit=3)


def test_eight_tenants_at_once_within_their_own_budgets_get_no_429(start_demo_api):
    tenants = tuple(f"t{n}" for n in range(1, 9))
    # 50 ms a request: each tenant's five requests span 250 ms, so the eight overlap.
    api = start_demo_api(tenants=tenants, rate_limit=5, rate_window_seconds=30, latency_ms=50)
    barrier = threading.Barrier(len(tenants))
    statuses: dict[str, list[int]] = {}

    def spend(tenant: str) -> None:
        barrier.wait()
        with requests.Session() as session:
            session.params = {"api_key": api.tenant_key(tenant)}
            url = api.tenant_url(tenant, "generic") + "/v1/items"
            statuses[tenant] = [session.get(url, timeout=10).status_code for _ in range(5)]

    threads = [threading.Thread(target=spend, args=(tenant,)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == {tenant: [200] * 5 for tenant in tenants}
    report = assert_tenant_budgets_kept(api, limit=5)
    assert "8 tenants" in report
    assert tenants_requesting_at_once(api) >= 4, api.tenant_records()
    # One key shared by all eight would have been refused 35 of its 40 requests.
    assert api.stats()["status_counts"] == {"200": 40}


def test_a_tenant_openapi_document_templates_the_tenant_in_its_server_url(start_demo_api):
    api = start_demo_api(tenants=("acme",))
    document = requests.get(api.tenant_url("acme", "ecommerce") + "/openapi.json", timeout=10)
    (server,) = document.json()["servers"]
    assert server["url"] == f"{api.url()}/t/{{tenant}}/ecommerce"
    assert server["variables"]["tenant"]["default"] == "acme"
    assert set(document.json()["paths"]) == {s.path for s in VERTICALS["ecommerce"].values()}
    missing = requests.get(api.tenant_url("nobody", "ecommerce") + "/openapi.json", timeout=10)
    assert missing.status_code == 404


def test_advancing_one_tenants_collection_leaves_the_others_alone(start_demo_api):
    api = start_demo_api(tenants=("acme", "globex"), counts={"*": 20})
    before = api.expected_rows("generic", "items", tenant="globex")
    changed = requests.post(
        api.url() + "/_demo/advance",
        params={"collection": "generic.items", "insert": "2", "update": "3", "tenant": "acme"},
        timeout=10,
    ).json()
    assert changed["inserted"] == [21, 22] and len(changed["updated"]) == 3
    assert len(api.expected_rows("generic", "items", tenant="acme")) == 22
    assert api.expected_rows("generic", "items", tenant="globex") == before
    assert len(api.expected_rows("generic", "items")) == 20


def test_demo_api_flags_name_tenants_and_a_per_key_rate_limit():
    def config(*flags):
        return _demo_api_config(build_parser().parse_args(["demo-api", *flags]), 0)

    named = config("--tenants", "acme,globex", "--tenant-ids", "distinct", "--rate-limit", "9")
    assert (named.tenants, named.tenant_ids, named.rate_limit) == (
        ("acme", "globex"),
        "distinct",
        9,
    )
    assert config("--tenants", "3").tenants == ("t01", "t02", "t03")
    assert config("--records", "acme:generic.items=5").count("generic", "items", "acme") == 5
    assert config().tenants == ()
    with pytest.raises(CliError, match="--tenants: tenant 'Acme'"):
        config("--tenants", "Acme")
    with pytest.raises(CliError, match="named twice"):
        config("--tenants", "acme,acme")
