"""The devstack's mapping of IAM actions onto SeaweedFS's coarse identity actions."""

import pytest

from lucid_devstack.seaweedfs import coarse_actions


def test_recorder_actions_map_to_read_write_list() -> None:
    assert coarse_actions(["s3:PutObject", "s3:GetObject", "s3:ListBucket",
                           "s3:GetBucketLocation"]) == ["List", "Read", "Write"]


def test_retention_and_bypass_are_never_implied_by_broader_actions() -> None:
    # SeaweedFS refuses object-lock headers without PutObjectRetention, and its Admin
    # bypasses governance: a writer must get neither by accident.
    assert coarse_actions(["s3:PutObject", "s3:DeleteObjectVersion"]) == ["Write"]
    assert coarse_actions(["s3:PutObjectRetention"]) == ["PutObjectRetention"]
    assert "BypassGovernanceRetention" in coarse_actions(["s3:BypassGovernanceRetention"])


def test_bucket_creation_needs_admin() -> None:
    assert coarse_actions(["s3:CreateBucket"]) == ["Admin"]
    assert "Admin" in coarse_actions(["s3:PutBucketVersioning"])


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="no SeaweedFS action for s3:RestoreObject"):
        coarse_actions(["s3:RestoreObject"])
