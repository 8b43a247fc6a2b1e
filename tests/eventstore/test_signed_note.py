import base64

import pytest

from eventstore.signed_note import (
    CheckpointBody,
    NoteError,
    Signature,
    SigningKey,
    Verifier,
    key_id,
    open_note,
)

BODY = CheckpointBody("scim-gateway/tenant", 7, bytes(range(32)))


def test_a_signed_checkpoint_has_the_c2sp_shape_and_verifies():
    key = SigningKey.generate("scim-gateway")
    note = key.sign(BODY.text())

    body, signature_line = note.split("\n\n")
    assert body + "\n" == f"scim-gateway/tenant\n7\n{base64.b64encode(bytes(range(32))).decode()}\n"
    assert signature_line.startswith("\u2014 scim-gateway ")
    raw = base64.b64decode(signature_line.split(" ")[2])
    assert raw[:4] == key_id("scim-gateway", key.verifier.public_key) and len(raw) == 68
    assert open_note(note, key.verifier) == (BODY.text(), Signature.VALID)
    assert CheckpointBody.parse(BODY.text()) == BODY


def test_a_note_signed_by_another_key_or_altered_does_not_verify():
    key, foreign = SigningKey.generate("scim-gateway"), SigningKey.generate("scim-gateway")
    assert open_note(foreign.sign(BODY.text()), key.verifier)[1] is Signature.MISSING
    altered = key.sign(BODY.text()).replace("\n7\n", "\n8\n")
    assert open_note(altered, key.verifier)[1] is Signature.INVALID


def test_keys_round_trip_through_their_text_forms():
    key = SigningKey.generate("scim-gateway")
    assert SigningKey.parse(key.text()) == key
    assert Verifier.parse(key.verifier.text()) == key.verifier
    assert key.verifier.text().startswith(f"scim-gateway+{key.verifier.key_id.hex()}+")


def test_a_verifier_key_with_a_wrong_id_is_refused():
    name, _, encoded = SigningKey.generate("scim-gateway").verifier.text().split("+", 2)
    with pytest.raises(NoteError):
        Verifier.parse(f"{name}+00000000+{encoded}")
