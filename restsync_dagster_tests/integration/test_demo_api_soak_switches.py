"""The demo API's switches the soak relies on: soft deletes, broken answers that heal after N,
OAuth tokens that expire or are revoked while it runs."""

import requests


def get(api, path, **params):
    return requests.get(api.url() + path, params=params, timeout=10)


def test_a_soft_deleted_record_is_served_with_deleted_at_and_found_by_updated_since(
    start_demo_api,
):
    api = start_demo_api(counts={"ecommerce.orders": 20})
    clock = max(r["updated_at"] for r in api.expected_rows("ecommerce", "orders"))
    changed = api.advance("ecommerce.orders", delete=3, hours=1)
    assert len(changed["deleted"]) == 3
    since = get(
        api, "/ecommerce/v1/orders", api_key="demo-ecommerce-key", updated_since=clock
    ).json()["data"]
    deleted = {r["id"]: r for r in since if "deleted_at" in r}
    assert sorted(deleted) == sorted(changed["deleted"]), "found by updated_since"
    assert all(r["deleted_at"] == r["updated_at"] > clock for r in deleted.values())
    later = api.advance("ecommerce.orders", update=20, hours=1)
    assert not set(later["updated"]) & set(changed["deleted"]), "a deleted record stays deleted"


def test_a_broken_answer_with_times_heals_after_that_many(start_demo_api):
    api = start_demo_api()
    api.misbehave("/generic/v1/items", "non_json", times=1)
    key = {"api_key": "demo-generic-key"}
    assert get(api, "/generic/v1/items", **key).headers["Content-Type"] == "text/plain"
    assert get(api, "/generic/v1/items", **key).json()["data"]


def test_tokens_revoked_or_short_lived_answer_401(start_demo_api):
    api = start_demo_api()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "demo-refresh-token",
        "client_id": "demo-client",
        "client_secret": "demo-client-secret",
    }

    def token() -> dict[str, str]:
        answer = requests.post(api.url() + "/oauth/token", data=form, timeout=10).json()
        return {"Authorization": f"Bearer {answer['access_token']}"}

    headers = token()
    items = api.url() + "/generic/v1/items"
    assert requests.get(items, headers=headers, timeout=10).status_code == 200
    api.revoke_tokens()
    assert requests.get(items, headers=headers, timeout=10).status_code == 401
    api.set_token_lifetime(0)
    assert requests.get(items, headers=token(), timeout=10).status_code == 401
