# The rules of docs/reference.md §3 and the decision of §4, stated in Rego.
#
# The independent twin of the guest: written from the reference, not from
# guest/src, and run under regorus by the differential test
# (tests/integration/differential.rs), which requires its per-rule outcomes,
# status, `allowed` and event to equal the shipped component's on every
# generated subject, and by the peer bench (benches/verdict.rs). It builds
# no messages.
#
# Where the reference leaves a reading open, the comment at the rule says
# which one this file takes. Readings marked "(as the guest)" are ones the
# differential test found the guest taking where this file first took
# another, and the reference allows both: this file follows the guest
# there, so those points are stated, not independently checked, until
# docs/reference.md settles them.
#
# Regexes use explicit ASCII classes only: regorus may be built with a
# regex crate without Unicode classes (`\d`, `\s`), and `\d` would match
# other scripts' digits where it has them.
#
# input:    {"reference", "digest", "labels": {key: value},
#            "pin": null | {"digest"?, "source_sha"?},
#            "now": {"seconds", "nanoseconds"}, "mode": "enforce" | "log-only"}
# data.settings: the artifact's settings (§6).
# commit_exists(owner, repo, sha): the host's look-up, answering
#            {"kind": "found" | "not_found" | "unavailable"} or
#            {"kind": "moved", "owner", "repo"}.
package provgate

import rego.v1

# ---------------------------------------------------------------------------
# Settings (§6): the last two keys may be left out.

allowed_owners := data.settings.allowed_owners

max_skew_seconds := object.get(data.settings, "created_max_skew_seconds", 300)

on_unavailable := object.get(data.settings, "on_unavailable", "deny")

# gitea_base_url is a scheme (http or https), a host and an optional port.
base_parts := regex.find_all_string_submatch_n(
	`\A(https?)://([A-Za-z0-9.-]+)(?::([0-9]+))?/?\z`,
	data.settings.gitea_base_url, 1,
)[0]

base_scheme := base_parts[1]

base_host := lower(base_parts[2])

default_port := {"https": 443, "http": 80}[base_scheme]

base_port := digits_value(base_parts[3]) if base_parts[3] != ""
else := default_port

# ---------------------------------------------------------------------------
# The four labels (exact, case-sensitive keys).

source_key := "org.opencontainers.image.source"

revision_key := "org.opencontainers.image.revision"

created_key := "org.opencontainers.image.created"

run_id_key := "molecule.workflow.run_id"

# Blank: nothing but white space (Unicode White_Space, as trim_space trims).
blank(value) if trim_space(value) == ""

# A label that exists and is not blank.
given(key) if {
	value := input.labels[key]
	not blank(value)
}

# Reading taken: a blank label is "missing" for the format rules too (they
# are skipped: labels.present already failed for it).
label(key) := input.labels[key] if given(key)

# ---------------------------------------------------------------------------
# labels.present

labels_present := "pass" if {
	given(source_key)
	given(revision_key)
	given(created_key)
	given(run_id_key)
} else := "fail"

# ---------------------------------------------------------------------------
# revision.format: exactly 40 characters of 0-9a-f.

revision_format := "skipped" if not label(revision_key)
else := "pass" if regex.match(`\A[0-9a-f]{40}\z`, label(revision_key))
else := "fail"

# ---------------------------------------------------------------------------
# digest.format: the subject digest, and a pin's digest if given.

digest_ok(d) if regex.match(`\Asha256:[0-9a-f]{64}\z`, d)

pin_digest_ok if not has_pin_digest

pin_digest_ok if digest_ok(input.pin.digest)

has_pin_digest if is_string(input.pin.digest)

has_pin_sha if is_string(input.pin.source_sha)

digest_format := "pass" if {
	digest_ok(input.digest)
	pin_digest_ok
} else := "fail"

# ---------------------------------------------------------------------------
# created.format: an RFC 3339 date-time (RFC 3339 §5.6), at most
# created_max_skew_seconds after now.
#
# Readings taken: the ABNF of §5.6, with "T" and "Z" also in lower case (its
# NOTE), but not its "space instead of T" remark; any number of fraction
# digits, compared with now to the nanosecond (the clock's resolution:
# further digits are dropped; as the guest); seconds up to 60 (a leap second, counted as
# the next minute's first); offsets -00:00 and +00:00 both mean UTC.

rfc3339 := `\A([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))\z`

created_parts := regex.find_all_string_submatch_n(rfc3339, label(created_key), 1)[0]

leap_year(y) if {
	y % 4 == 0
	y % 100 != 0
}

leap_year(y) if y % 400 == 0

days_in_month(y, m) := 29 if {
	m == 2
	leap_year(y)
} else := 28 if m == 2
else := 30 if m in {4, 6, 9, 11}
else := 31

# The number a string of ASCII digits spells (to_number reads JSON, which
# refuses leading zeros).
digits_value(s) := 0 if trim_left(s, "0") == ""
else := to_number(trim_left(s, "0"))

# Integer division of a non-negative a by b.
div(a, b) := (a - (a % b)) / b

january_or_february(m) := 1 if m <= 2
else := 0

# Days from 0000-03-01 (shifted 400 years, so that nothing is negative) to
# the date: years of 365 days plus leap days, then months from March.
day_number(y, m, d) := n if {
	march_year := (y + 400) - january_or_february(m)
	month_from_march := (m + 9) % 12
	n := ((((365 * march_year) + div(march_year, 4)) - div(march_year, 100)) + div(march_year, 400)) + div((153 * month_from_march) + 2, 5) + (d - 1)
}

created_fields := {
	"year": digits_value(created_parts[1]),
	"month": digits_value(created_parts[2]),
	"day": digits_value(created_parts[3]),
	"hour": digits_value(created_parts[4]),
	"minute": digits_value(created_parts[5]),
	"second": digits_value(created_parts[6]),
	"offset_hour": digits_value(created_parts[10]),
	"offset_minute": digits_value(created_parts[11]),
}

created_valid if {
	f := created_fields
	f.month >= 1
	f.month <= 12
	f.day >= 1
	f.day <= days_in_month(f.year, f.month)
	f.hour <= 23
	f.minute <= 59
	f.second <= 60
	f.offset_hour <= 23
	f.offset_minute <= 59
}

# Seconds east of UTC.
created_offset := 0 if created_parts[8] != ""
else := (created_fields.offset_hour * 3600) + (created_fields.offset_minute * 60) if created_parts[9] == "+"
else := 0 - ((created_fields.offset_hour * 3600) + (created_fields.offset_minute * 60))

# Whole seconds since the Unix epoch.
created_seconds := s if {
	f := created_fields
	days := day_number(f.year, f.month, f.day) - day_number(1970, 1, 1)
	s := ((((days * 86400) + (f.hour * 3600)) + (f.minute * 60)) + f.second) - created_offset
}

# The fraction as nanoseconds.
created_nanos := digits_value(substring(concat("", [created_parts[7], "000000000"]), 0, 9))

# created - now <= skew: whole seconds first; on the boundary second, the
# fraction may not exceed now's.
created_in_time if created_seconds - input.now.seconds < max_skew_seconds

created_in_time if {
	created_seconds - input.now.seconds == max_skew_seconds
	created_nanos <= input.now.nanoseconds
}

created_format := "skipped" if not label(created_key)
else := "pass" if {
	created_valid
	created_in_time
} else := "fail"

# ---------------------------------------------------------------------------
# run_id.format: a positive decimal integer of ASCII digits.
#
# Readings taken (the reference says neither; as the guest): written
# without leading zeros, and at most 9223372036854775807 (a signed 64-bit
# run id, as Gitea and GitHub number their runs).

max_run_id := "9223372036854775807"

run_id_format := "skipped" if not label(run_id_key)
else := "pass" if {
	id := label(run_id_key)
	regex.match(`\A[1-9][0-9]*\z`, id)
	fits_run_id(id)
} else := "fail"

fits_run_id(id) if count(id) < count(max_run_id)

# Digit strings of equal length compare as their numbers do.
fits_run_id(id) if {
	count(id) == count(max_run_id)
	id <= max_run_id
}

# ---------------------------------------------------------------------------
# source.trusted: exactly <gitea_base_url>/<owner>/<repo>, optional `.git`
# or one trailing `/`, the owner allowed, plain names, nothing else.
#
# Readings taken: the scheme is spelt as the base URL spells it (as the
# guest); the host compares case-insensitively, as ASCII (DNS names do);
# the port is a number of 1 to 5 digits equal to the base URL's (or its
# scheme's default), leading zeros allowed (as the guest), and may be left
# out when it is the scheme's default; the optional `.git` is a lower-case
# one. A plain name (the reference does not define one) is Gitea's: ASCII
# letters, digits, `-`, `_` and `.`, not `.` or `..`, at most 100 of them
# (as the guest); in a source path, not ending in `.git` either (Gitea
# reserves such names; as the guest, not yet met by the generators).

plain(name) if {
	regex.match(`\A[A-Za-z0-9_.-]{1,100}\z`, name)
	not name in {".", ".."}
}

plain_in_path(name) if {
	plain(name)
	not endswith(name, ".git")
}

source_parts := regex.find_all_string_submatch_n(
	`\A([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9.-]*)(?::([0-9]{1,5}))?/([^/]+)/(.+)\z`,
	label(source_key), 1,
)[0]

# The port a source names, written or implied by its scheme.
source_port := digits_value(source_parts[3]) if source_parts[3] != ""
else := default_port

# The repository part without the one optional ending.
repo_spelt := trim_suffix(source_parts[5], "/") if endswith(source_parts[5], "/")
else := trim_suffix(source_parts[5], ".git") if endswith(source_parts[5], ".git")
else := source_parts[5]

# owner/repo of a trusted source.
trusted_repo := [owner, repo] if {
	source_parts[1] == base_scheme
	lower(source_parts[2]) == base_host
	source_port == base_port
	owner := source_parts[4]
	repo := repo_spelt
	plain_in_path(owner)
	plain_in_path(repo)
	owner in allowed_owners
}

source_trusted := "skipped" if not label(source_key)
else := "pass" if trusted_repo
else := "fail"

# ---------------------------------------------------------------------------
# revision.resolves: asked only when source.trusted and revision.format
# passed. A move is followed once, to an allowed owner under plain names;
# any other move, or a second one, is a fail.
#
# Reading taken: a move to names that are not plain is a fail (the source
# would not be trusted under them either).

first_answer := commit_exists(trusted_repo[0], trusted_repo[1], label(revision_key)) if {
	source_trusted == "pass"
	revision_format == "pass"
}

follow_move if {
	first_answer.kind == "moved"
	plain(first_answer.owner)
	plain(first_answer.repo)
	first_answer.owner in allowed_owners
}

second_answer := commit_exists(first_answer.owner, first_answer.repo, label(revision_key)) if follow_move

settled := {"found": "pass", "not_found": "fail", "unavailable": "indeterminate"}

revision_resolves := "skipped" if not first_answer
else := settled[first_answer.kind] if first_answer.kind != "moved"
else := "fail" if not follow_move
else := settled[second_answer.kind] if second_answer.kind != "moved"
else := "fail"

# ---------------------------------------------------------------------------
# pin.consistent: each of the pin's digest and source_sha that is given
# equals the subject digest and the revision; skipped without a pin.
#
# Readings taken: "given" is present in the pin, even if blank (§7.2: a
# pin flag's value is judged, and a malformed one fails a rule); a
# source_sha with no revision label (missing or blank) to equal fails.
# The guest departs from both (tests/integration/differential.rs,
# `Departure`).

pin_consistent := "skipped" if not is_object(input.pin)
else := "fail" if {
	has_pin_digest
	input.pin.digest != input.digest
} else := "fail" if {
	has_pin_sha
	not input.pin.source_sha == label(revision_key)
} else := "pass"

# ---------------------------------------------------------------------------
# tag.consistent: a tag that embeds a commit (`staging-<hex>` or
# `sha-<hex>`, 7 to 40 lower-case hex characters) agrees with the revision
# (a short one is its prefix); otherwise skipped.
#
# Readings taken: the tag is what follows the last `:` of the last path
# segment of the name, the name being the reference up to its first `@`;
# the whole tag must be one of the two forms; a full one must equal the
# revision. With no well-formed revision (revision.format did not pass)
# there is no commit to agree with: skipped, as the format rules are when
# their label is missing (as the guest).

name_part := split(input.reference, "@")[0]

last_segment := s if {
	segments := split(name_part, "/")
	s := segments[count(segments) - 1]
}

tag := t if {
	contains(last_segment, ":")
	pieces := split(last_segment, ":")
	t := pieces[count(pieces) - 1]
}

tag_sha := m[2] if {
	m := regex.find_all_string_submatch_n(`\A(staging|sha)-([0-9a-f]{7,40})\z`, tag, 1)[0]
}

agrees(sha) if sha == label(revision_key)

agrees(sha) if {
	count(sha) < 40
	startswith(label(revision_key), sha)
}

tag_consistent := "skipped" if not tag_sha
else := "skipped" if revision_format != "pass"
else := "pass" if agrees(tag_sha)
else := "fail"

# ---------------------------------------------------------------------------
# The verdict (§4).

findings := [
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

outcome_of(rule) := f.outcome if {
	some f in findings
	f.rule == rule
}

failed(rules) if {
	some rule in rules
	outcome_of(rule) == "fail"
}

any_outcome(o) if {
	some f in findings
	f.outcome == o
}

status := "rejected" if any_outcome("fail")
else := "indeterminate" if any_outcome("indeterminate")
else := "verified"

allowed := true if input.mode == "log-only"
else := true if status == "verified"
else := true if {
	status == "indeterminate"
	on_unavailable == "allow"
} else := false

formats := {"revision.format", "digest.format", "created.format", "run_id.format"}

event := concat("", ["redeploy.verify.", e]) if {
	e := event_name
}

event_name := "unlabeled" if labels_present == "fail"
else := "malformed" if failed(formats)
else := "untrusted_source" if source_trusted == "fail"
else := "pin_mismatch" if failed({"pin.consistent", "tag.consistent"})
else := "unresolved" if revision_resolves == "fail"
else := "unavailable" if revision_resolves == "indeterminate"
else := "reachable"

verdict := {"status": status, "allowed": allowed, "event": event, "findings": findings}
