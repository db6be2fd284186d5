import pytest

from reconciler.model.accounts import is_paper_account


@pytest.mark.parametrize("account", ["DU0000001", "du0000002", "DF0000003", " DU0000004 "])
def test_paper_account_ids_are_paper(account):
    assert is_paper_account(account)


@pytest.mark.parametrize("account", ["U0000001", "F0000001", "D0000001", "DX0000001", "", None])
def test_live_unknown_and_missing_ids_are_never_paper(account):
    assert not is_paper_account(account)
