"""POST/PUT /api/customers (bulk import from a CRM), then lookups by phone (any format) and by id."""

from __future__ import annotations

import re
from typing import Any

from support.api_helpers import Api

UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def without_times(customer: dict[str, Any]) -> dict[str, Any]:
    assert UTC_TIME.match(customer.pop("created_at"))
    assert UTC_TIME.match(customer.pop("updated_at"))
    return customer


async def test_import_then_look_up_by_phone_in_another_format(api: Api) -> None:
    status, result = await api.send(
        "POST",
        "/api/customers",
        [
            {
                "id": "crm-1",
                "name": "Anna Kowalska",
                "phones": ["+48221234567", "+48 600-700-800"],
                "attributes": {"tier": "gold", "open_tickets": 2, "tags": ["vip"], "note": None},
            },
            {"id": 42, "name": None, "phones": []},
            {"id": "crm-3", "phones": ["(0048) 22.765.43.21"]},
        ],
    )
    assert (status, result) == (200, {"created": 3, "updated": 0})

    status, customer = await api.get("/api/customers", {"phone": "+48 22 123-45-67"})
    assert status == 200
    assert without_times(customer) == {
        "id": "crm-1",
        "name": "Anna Kowalska",
        "phones": ["+48221234567", "+48600700800"],
        "attributes": {"tier": "gold", "open_tickets": 2, "tags": ["vip"], "note": None},
    }
    assert (await api.get("/api/customers", {"phone": "0048 600 700 800"}))[1]["id"] == "crm-1"
    assert (await api.get("/api/customers", {"phone": "+48227654321"}))[1]["id"] == "crm-3"
    status, customer = await api.get("/api/customers/42")
    assert (status, without_times(customer)) == (
        200,
        {"id": "42", "name": None, "phones": [], "attributes": {}},
    )


async def test_put_replaces_and_a_number_moves_to_its_new_owner(api: Api) -> None:
    await api.send(
        "POST",
        "/api/customers",
        [
            {"id": "crm-1", "name": "Anna", "phones": ["+48221234567"], "attributes": {"tier": "gold"}},
            {"id": "crm-2", "name": "Bartek", "phones": ["+48600700800"]},
        ],
    )
    status, first = await api.get("/api/customers/crm-2")
    status, result = await api.send(
        "PUT",
        "/api/customers",
        [
            {"id": "crm-2", "name": "Bartek Nowak", "phones": ["+48 22 123 45 67"]},
            {"id": "crm-4", "name": "Celina"},
        ],
    )
    assert (status, result) == (200, {"created": 1, "updated": 1})
    status, moved = await api.get("/api/customers", {"phone": "+48221234567"})
    assert (moved["id"], moved["name"], moved["phones"]) == ("crm-2", "Bartek Nowak", ["+48221234567"])
    assert moved["created_at"] == first["created_at"]
    assert moved["updated_at"] >= first["updated_at"]
    # crm-1 lost the number; the old number of crm-2 belongs to nobody now
    status, anna = await api.get("/api/customers/crm-1")
    assert (anna["phones"], anna["attributes"]) == ([], {"tier": "gold"})
    assert (await api.get("/api/customers", {"phone": "+48600700800"}))[0] == 404


async def test_an_empty_import_changes_nothing(api: Api) -> None:
    assert await api.send("POST", "/api/customers", []) == (200, {"created": 0, "updated": 0})


async def test_the_largest_import(api: Api) -> None:
    customers = [
        {"id": f"crm-{n}", "name": f"Customer {n}", "phones": [f"+4822{n:07}"], "attributes": {"n": n}}
        for n in range(10_000)
    ]
    assert await api.send("PUT", "/api/customers", customers) == (200, {"created": 10_000, "updated": 0})
    status, customer = await api.get("/api/customers", {"phone": "+48 22 000 99 99"})
    assert (status, customer["id"], customer["attributes"]) == (200, "crm-9999", {"n": 9999})
