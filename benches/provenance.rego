# The rules (docs/reference.md §3) and the decision (§4), in Rego, for the peer
# benchmark only (benches/verdict.rs runs it with regorus). It mirrors the
# guest's outcomes; it does not build the guest's messages, which makes the
# comparison lean in regorus' favour.
package provgate

import rego.v1

source_key := "org.opencontainers.image.source"
revision_key := "org.opencontainers.image.revision"
created_key := "org.opencontainers.image.created"
run_id_key := "molecule.workflow.run_id"

present(key) if trim_space(input.labels[key]) != ""

missing := [key | some key in [source_key, revision_key, created_key, run_id_key]; not present(key)]

labels_present := "pass" if count(missing) == 0
else := "fail"

revision_format := "skipped" if not present(revision_key)
else := "pass" if regex.match(`^[0-9a-f]{40}$`, input.labels[revision_key])
else := "fail"

digest_ok(d) if regex.match(`^sha256:[0-9a-f]{64}$`, d)

pin_digest_ok if not input.pin
pin_digest_ok if digest_ok(input.pin.digest)

digest_format := "pass" if {
	digest_ok(input.digest)
	pin_digest_ok
}
else := "fail"

created_format := "skipped" if not present(created_key)
else := "pass" if {
	regex.match(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`, input.labels[created_key])
	time.parse_rfc3339_ns(input.labels[created_key]) - input.now_ns <= data.settings.created_max_skew_seconds * 1000000000
}
else := "fail"

run_id_format := "skipped" if not present(run_id_key)
else := "pass" if regex.match(`^[1-9][0-9]{0,18}$`, input.labels[run_id_key])
else := "fail"

# owner and repo of a trusted source: exactly <base>/<owner>/<repo>[.git|/]
repo := [parts[1], parts[2]] if {
	parts := regex.find_all_string_submatch_n(data.settings.source_pattern, input.labels[source_key], 1)[0]
	parts[1] in data.settings.allowed_owners
	not parts[2] in {".", ".."}
}

source_trusted := "skipped" if not present(source_key)
else := "pass" if repo
else := "fail"

answer := commit_exists(repo[0], repo[1], input.labels[revision_key]) if {
	source_trusted == "pass"
	revision_format == "pass"
}

revision_resolves := "skipped" if not answer
else := "pass" if answer == "found"
else := "fail" if answer == "not_found"
else := "indeterminate"

pin_consistent := "skipped" if not input.pin
else := "fail" if input.pin.digest != input.digest
else := "fail" if {
	input.pin.source_sha != ""
	present(revision_key)
	input.pin.source_sha != input.labels[revision_key]
}
else := "pass"

tag_sha := m[2] if {
	m := regex.find_all_string_submatch_n(`:(staging|sha)-([0-9a-f]{7,40})(@.*)?$`, input.reference, 1)[0]
}

tag_consistent := "skipped" if not tag_sha
else := "skipped" if revision_format != "pass"
else := "pass" if startswith(input.labels[revision_key], tag_sha)
else := "fail"

outcomes := [
	{"rule": "labels.present", "outcome": labels_present},
	{"rule": "revision.format", "outcome": revision_format},
	{"rule": "digest.format", "outcome": digest_format},
	{"rule": "created.format", "outcome": created_format},
	{"rule": "run_id.format", "outcome": run_id_format},
	{"rule": "source.trusted", "outcome": source_trusted},
	{"rule": "revision.resolves", "outcome": revision_resolves},
	{"rule": "pin.consistent", "outcome": pin_consistent},
	{"rule": "tag.consistent", "outcome": tag_consistent},
]

failed(rules) if {
	some f in outcomes
	f.rule in rules
	f.outcome == "fail"
}

status := "rejected" if failed({f.rule | some f in outcomes})
else := "indeterminate" if revision_resolves == "indeterminate"
else := "verified"

event := "redeploy.verify.unlabeled" if labels_present == "fail"
else := "redeploy.verify.malformed" if failed({"revision.format", "digest.format", "created.format", "run_id.format"})
else := "redeploy.verify.untrusted_source" if source_trusted == "fail"
else := "redeploy.verify.pin_mismatch" if failed({"pin.consistent", "tag.consistent"})
else := "redeploy.verify.unresolved" if revision_resolves == "fail"
else := "redeploy.verify.unavailable" if revision_resolves == "indeterminate"
else := "redeploy.verify.reachable"

allowed := true if input.mode == "log-only"
else := true if status == "verified"
else := false

verdict := {"status": status, "allowed": allowed, "event": event, "findings": outcomes}
