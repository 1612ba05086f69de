"""Recompute the event chain of `coop audit export`: python3 verify_chain.py events.jsonl"""

import base64, hashlib, json, struct, sys, uuid  # noqa: E401, I001 (short for auditors)

h, n, e = bytes(32), 0, {"position": 0}  # the chain starts from 32 zero bytes
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), start=1):  # noqa: SIM115
    e = json.loads(line)
    if "withheld" in e:  # about a beneficiary or naming a donor: only its digest
        digest = bytes.fromhex(e["event_sha256"])
    else:
        topic, state = e["topic"].encode(), base64.b64decode(e["state"])
        event = struct.pack(">16sqI", uuid.UUID(e["aggregate_id"]).bytes, e["version"],
                            len(topic)) + topic + struct.pack(">Q", len(state)) + state  # fmt: skip
        digest = hashlib.sha256(event).digest()
    h = hashlib.sha256(h + struct.pack(">Q", e["position"]) + digest).digest()
    if h.hex() != e["hash"]:
        sys.exit(f"MISMATCH at position {e['position']} (line {n})")
print(f"OK: {n} events; head {e['position']}:{h.hex()}")
