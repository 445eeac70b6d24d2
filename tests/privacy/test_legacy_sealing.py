"""Rows written before personal-data encryption (plaintext, migration 0019 leaves them) are sealed by the
start-up step ``promptops.privacy.legacy.seal_plaintext``, on SQLite and PostgreSQL; afterwards they behave
like any other row (login by email, reads, erasure)."""

from __future__ import annotations

from promptops.auth.models import Membership, User
from promptops.auth.passwords import hash_password
from promptops.feedback.models import Feedback
from promptops.ids import new_id
from promptops.privacy.legacy import seal_plaintext
from tests.privacy.test_erasure_api import login, stored_text
from tests.support.app import Api

EMAIL = "legacy.lou@example.com"
NAME = "Lou Oldrecord"
END_USER = "legacy-end-customer"
NOTE = "legacy note about Quokka-7"


async def test_plaintext_rows_are_sealed_at_start(api: Api) -> None:
    runtime = api.app.state.runtime
    me = (await api.get("/api/v1/auth/me")).json()
    user_id = new_id("user")
    async with runtime.db.transaction(write=True) as session:
        session.add(
            User(
                id=user_id,
                email=EMAIL,
                email_hash=None,
                name=NAME,
                password_hash=hash_password("lou-pass-12345"),
            )
        )
        await session.flush()
        session.add(
            Membership(id=new_id("membership"), project_id=me["projectId"], user_id=user_id, role="Viewer")
        )
        for user, actor in ((END_USER, None), (EMAIL, user_id)):
            session.add(
                Feedback(
                    id=new_id("feedback"),
                    project_id=me["projectId"],
                    user=user,
                    actor_id=actor,
                    source="human",
                    score=3.0,
                    rubric={},
                    tags=[],
                    notes=NOTE,
                )
            )
    assert NOTE in await stored_text(api)

    assert await seal_plaintext(runtime.db) == (1, 2)
    assert await seal_plaintext(runtime.db) == (0, 0)  # done once; later starts find nothing
    text = await stored_text(api)
    assert EMAIL not in text and NAME not in text and "Quokka-7" not in text and END_USER not in text

    assert (await login(api, EMAIL, "lou-pass-12345")).status_code == 200
    members = {m["userId"]: m for m in (await api.get("/api/v1/members")).json()}
    assert (members[user_id]["email"], members[user_id]["name"]) == (EMAIL, NAME)
    items = (await api.get("/api/v1/feedback")).json()["items"]
    assert sorted((f["user"], f["notes"]) for f in items) == sorted([(END_USER, NOTE), (EMAIL, NOTE)])
    # The record Lou sent under their own email is Lou's: erasing Lou erases it.
    r = await api.post(f"/api/v1/privacy/subjects/{user_id}/erase")
    assert r.status_code == 200, r.text
    items = (await api.get("/api/v1/feedback")).json()["items"]
    assert sorted((f["user"], f["notes"]) for f in items) == sorted(
        [(END_USER, NOTE), ("[erased]", "[erased]")]
    )
