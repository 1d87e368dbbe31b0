"""The operator's own ed25519 key: in a Secret only the operator reads, made if absent.

Its public half is published in a ConfigMap next to it, for auditors
(`kubectl get configmap -n <ns> lucid-operator-public-key -o jsonpath='{.data.publicKey}'`).
A key given through the chart (an existing Secret) is used as it is.
"""

from __future__ import annotations

import base64
import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lucid_common.evidence import (
    key_id,
    load_operator_private,
    new_operator_key,
    private_pem,
    public_pem,
)
from lucid_operator.kube import Kube
from lucid_operator.settings import OperatorSettings

log = logging.getLogger("lucid.operator")
PRIVATE_KEY = "privateKey"
PUBLIC_KEY = "publicKey"
KEY_ID = "keyId"


def load_or_create(kube: Kube, settings: OperatorSettings) -> Ed25519PrivateKey:
    namespace, name = settings.operator_namespace, settings.signing_key_secret
    data = kube.read_secret(namespace, name)
    if data is None:
        key = new_operator_key()
        created = kube.create_secret(namespace, name, {
            PRIVATE_KEY: base64.b64encode(private_pem(key)).decode()})
        if not created:  # another replica made it first: use that one
            data = kube.read_secret(namespace, name)
        else:
            log.info("created the operator's signing key in Secret %s/%s", namespace, name)
    if data is not None:
        if PRIVATE_KEY not in data:
            raise ValueError(f"Secret {namespace}/{name} has no key {PRIVATE_KEY!r}")
        key = load_operator_private(base64.b64decode(data[PRIVATE_KEY]),
                                    f"Secret {namespace}/{name}")
    public = key.public_key()
    kube.apply_configmap(namespace, settings.public_key_configmap, {
        PUBLIC_KEY: public_pem(public).decode(), KEY_ID: key_id(public)})
    log.info("sealing recordings with operator key %s", key_id(public)[:16])
    return key
