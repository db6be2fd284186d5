"""The git source's pure rules, with values: settings to config, when to refuse, which local
changes count, signature outcomes, git's complaints explained, and the gate that names them."""

from __future__ import annotations

import pytest

from reconciler.apply.gates import GateInputs, gate_git_clean
from reconciler.desired.gitinfo import explain_git_failure
from reconciler.desired.gitsource import (
    CheckoutFacts,
    GitSourceError,
    SourceConfig,
    SyncResult,
    local_changes,
    refusals,
    signature_refusal,
    signers_file_problem,
    source_config,
)
from reconciler.model.settings import Settings, SettingsError, load_settings

A, B, C = "a" * 40, "b" * 40, "c" * 40
CONFIG = SourceConfig("/srv/desired.git", "main", True, False, "RECONCILER_GIT_VERIFY=true")
DUBIOUS = (
    "fatal: detected dubious ownership in repository at '/var/lib/reconciler/desired-state'\n"
    "To add an exception for this directory, call:\n\n"
    "\tgit config --global --add safe.directory /var/lib/reconciler/desired-state\n"
)


def facts(**changes) -> CheckoutFacts:
    base = dict(
        toplevel="/srv/checkout",
        head=A,
        tip=A,
        previous_tip=A,
        current_branch="main",
        head_on_branch=True,
        tip_in_head=False,
        rewritten=False,
        local_changes=(),
    )
    return CheckoutFacts(**{**base, **changes})


# ------------------------------------------------------------------ settings


def test_settings_read_the_git_source_variables_with_their_defaults():
    default = load_settings({}, dotenv_path=None)
    assert (default.git_url, default.git_branch, default.git_poll, default.git_verify) == (
        None,
        "main",
        True,
        False,
    )
    chosen = load_settings(
        {
            "RECONCILER_GIT_URL": "https://git.example.invalid/desk/desired.git",
            "RECONCILER_GIT_BRANCH": "production",
            "RECONCILER_GIT_POLL": "false",
            "RECONCILER_GIT_VERIFY": "true",
        },
        dotenv_path=None,
    )
    assert (chosen.git_url, chosen.git_branch, chosen.git_poll, chosen.git_verify) == (
        "https://git.example.invalid/desk/desired.git",
        "production",
        False,
        True,
    )


def test_a_git_verify_value_that_is_not_a_boolean_names_the_variable():
    with pytest.raises(SettingsError, match="RECONCILER_GIT_VERIFY='maybe'"):
        load_settings({"RECONCILER_GIT_VERIFY": "maybe"}, dotenv_path=None)


def test_no_git_url_means_no_git_source():
    assert source_config(Settings()) is None


def test_paper_verifies_signatures_only_when_asked():
    url = "https://git.example.invalid/d.git"
    assert source_config(Settings(git_url=url)).verify is False
    asked = source_config(Settings(git_url=url, git_verify=True))
    assert (asked.verify, asked.verify_because) == (True, "RECONCILER_GIT_VERIFY=true")


def test_live_always_verifies_signatures_even_when_the_variable_says_false():
    live = source_config(Settings(trading_mode="live", git_url="https://git.example.invalid/d.git"))
    assert (live.verify, live.verify_because) == (True, "live mode always requires it")


def test_a_relative_path_is_resolved_against_the_working_directory_not_the_checkout(tmp_path):
    config = source_config(Settings(git_url="./remote.git"), cwd=tmp_path)
    assert config.url == str(tmp_path / "remote.git")


def test_a_remote_name_and_a_url_are_passed_to_git_as_given():
    assert source_config(Settings(git_url="origin")).url == "origin"
    scp = "git@git.example.invalid:desk/desired.git"
    assert source_config(Settings(git_url=scp)).url == scp


@pytest.mark.parametrize("branch", ["-delete", "a..b", "feature/", "has space", "x.lock", "a~1"])
def test_an_invalid_branch_name_is_an_error_naming_the_variable(branch):
    with pytest.raises(GitSourceError, match="RECONCILER_GIT_BRANCH"):
        source_config(Settings(git_url="origin", git_branch=branch))


def test_a_url_that_git_would_read_as_an_option_is_an_error():
    with pytest.raises(GitSourceError, match="RECONCILER_GIT_URL='--upload-pack=evil'"):
        source_config(Settings(git_url="--upload-pack=evil"))


def test_a_password_in_the_url_is_never_shown():
    hidden = "placeholder-not-a-password"
    config = SourceConfig(f"https://desk:{hidden}@git.example.invalid/d.git", "main", True, False, "")
    assert config.shown == "main of https://***@git.example.invalid/d.git"
    assert hidden not in refusals(facts(head_on_branch=False, head=B), config)[0]


# ------------------------------------------------------------------ refusals


def test_a_checkout_at_the_head_or_behind_it_on_the_branch_may_sync():
    assert refusals(facts(), CONFIG) == []
    assert refusals(facts(head=B, previous_tip=B, current_branch=None), CONFIG) == []


def test_head_off_the_branch_is_refused_as_moved():
    [reason] = refusals(facts(head=B, head_on_branch=False), CONFIG)
    assert reason.startswith(f"HEAD {B[:10]} of /srv/checkout is not on main of /srv/desired.git")
    assert "HEAD was moved to a commit that is not on main" in reason
    assert f"git -C /srv/checkout reset --keep {A[:10]}" in reason


def test_head_ahead_of_the_branch_is_refused_as_local_commits():
    [reason] = refusals(facts(head=B, head_on_branch=False, tip_in_head=True), CONFIG)
    assert "HEAD has commits that are not on main" in reason


def test_a_rewritten_branch_is_refused_as_a_force_push_naming_both_heads():
    [reason] = refusals(
        facts(head=B, previous_tip=B, tip=C, head_on_branch=False, rewritten=True), CONFIG
    )
    assert f"main was force-pushed: its history was rewritten from {B[:10]} to {C[:10]}" in reason


def test_local_changes_and_another_branch_are_each_refused():
    reasons = refusals(
        facts(local_changes=tuple(f"f{i}.yaml" for i in range(7)), current_branch="hotfix"),
        CONFIG,
    )
    assert len(reasons) == 2
    assert "local changes (f0.yaml, f1.yaml, f2.yaml, f3.yaml, f4.yaml, ...)" in reasons[0]
    assert "is on branch hotfix but the git source follows main" in reasons[1]


def test_a_checkout_without_a_commit_is_refused():
    assert refusals(facts(head=None, head_on_branch=False), CONFIG) == [
        "the checkout /srv/checkout has no commit checked out"
    ]


# ------------------------------------------------------------------ local changes


def test_tracked_changes_anywhere_count_but_untracked_files_only_under_the_desired_state():
    porcelain = "\0".join(
        [
            " M README.md",
            "?? notes.txt",
            "?? desired_state/portfolios/draft.yaml",
            "R  desired_state/new.yaml",
            "desired_state/old.yaml",
            "",
        ]
    )
    assert local_changes(porcelain, "desired_state") == (
        "README.md",
        "desired_state/portfolios/draft.yaml",
        "desired_state/new.yaml",
    )


def test_when_the_desired_state_is_the_whole_checkout_every_untracked_file_counts():
    assert local_changes("?? notes.txt\0", ".") == ("notes.txt",)
    assert local_changes("", ".") == ()


# ------------------------------------------------------------------ signatures


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("N", "is not signed"),
        ("B", "has a bad signature"),
        ("E", "cannot be checked"),
        ("U", "not trusted"),
        ("R", "revoked"),
        ("?", "has a signature git does not accept"),
    ],
)
def test_a_refused_signature_says_what_is_wrong_and_why_one_is_required(code, says):
    reason = signature_refusal(A, code, "", CONFIG)
    assert reason.startswith(f"the head commit {A[:10]} of main of /srv/desired.git ")
    assert says in reason
    assert reason.endswith("a trusted signature is required (RECONCILER_GIT_VERIFY=true)")


def test_ssh_signatures_need_an_allowed_signers_file_outside_the_checkout():
    assert signers_file_problem("openpgp", None, "/srv/checkout") is None
    assert "not set: no key is trusted" in signers_file_problem("ssh", None, "/srv/checkout")
    inside = signers_file_problem("ssh", "keys/allowed_signers", "/srv/checkout")
    assert "/srv/checkout/keys/allowed_signers is inside the checkout" in inside
    assert signers_file_problem("ssh", "/etc/reconciler/allowed_signers", "/srv/checkout") is None
    assert "inside" in signers_file_problem("ssh", "/srv/checkout/../checkout/k", "/srv/checkout")


# ------------------------------------------------------------------ lines and causes


def test_the_sync_line_says_where_from_what_and_who_signed():
    moved = SyncResult(B, A, True, "desk@example.invalid (key SHA256:x)", "main of /r.git")
    assert moved.line == (
        f"git source main of /r.git: at {B[:10]}, fast-forwarded from {A[:10]}; "
        "signature good: desk@example.invalid (key SHA256:x)"
    )
    still = SyncResult(A, A, False, None, "main of /r.git")
    assert still.line == (
        f"git source main of /r.git: at {A[:10]}, up to date "
        "(not fetched this cycle: RECONCILER_GIT_POLL=false)"
    )


def test_dubious_ownership_is_explained_with_the_path_the_owner_and_the_fix():
    text = explain_git_failure(DUBIOUS, "/x", "owned by uid 65534, running as uid 990")
    assert "git refuses to read /var/lib/reconciler/desired-state" in text
    assert "(owned by uid 65534, running as uid 990)" in text and "safe.directory" in text
    assert "git config --global --add safe.directory /var/lib/reconciler/desired-state" in text


def test_permission_denied_is_explained_as_permissions():
    text = explain_git_failure(
        "error: cannot open .git/FETCH_HEAD: Permission denied\n", "/srv/checkout"
    )
    assert text.startswith("git cannot use /srv/checkout: permission denied")
    assert "read and write access" in text


def test_any_other_failure_keeps_gits_first_error_line():
    text = explain_git_failure("hint: x\nfatal: bad object HEAD\n", "/srv/checkout")
    assert text == "git failed on /srv/checkout: fatal: bad object HEAD"


def _gate(settings, problem):
    return gate_git_clean(
        GateInputs(
            settings=settings,
            accounts=["DU0000001"],
            managed_accounts=["DU0000001"],
            git_commit=None,
            git_dirty=None,
            halt_reason=None,
            trading_states={},
            git_problem=problem,
        )
    )


def test_the_clean_git_gate_refuses_with_gits_real_complaint_not_not_in_git():
    cause = explain_git_failure(DUBIOUS, "/x")
    refused = _gate(Settings(require_clean_git=True), cause)
    assert (refused.passed, refused.detail) == (False, cause)
    plain = _gate(Settings(require_clean_git=True), None)
    assert plain.detail == "desired state is not in a git repository"
    paper = _gate(Settings(), cause)
    assert paper.passed and "safe.directory" in paper.detail
