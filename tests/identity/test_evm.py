"""EVM addresses: keccak-256 (not SHA3-256) and EIP-55 checksums, with the standard's own examples."""

from __future__ import annotations

import hashlib

import pytest

from retake.errors import ValidationFailed
from retake.identity.evm import check_evm_wallet, check_v1_wallet, checksummed, keccak256
from retake.server.realtime.wire import wallet_type
from tests.support import VALID_WALLET

EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    "0x52908400098527886E0F7030069857D2E4169EE7",  # all caps: its checksum happens to upper-case every letter
    "0xde709f2102306220921060314715629080e2fb77",  # all lower-case likewise
]


def test_keccak256_is_not_sha3_256() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"  # keccak-256 of no bytes
    assert keccak256(b"").hex() == empty
    assert hashlib.sha3_256(b"").hexdigest() != empty


@pytest.mark.parametrize("address", EIP55)
def test_checksums_of_the_standard(address: str) -> None:
    assert checksummed(address.lower()) == address
    assert check_evm_wallet(address) == address
    assert check_evm_wallet(address.lower()) == address == check_evm_wallet("0x" + address[2:].upper())


def test_one_wrong_letter_case_is_refused() -> None:
    address = EIP55[0]
    wrong = address[:3] + address[3].swapcase() + address[4:]
    with pytest.raises(ValidationFailed) as caught:
        check_evm_wallet(wrong)
    assert caught.value.code == "invalid_wallet_checksum"


def test_v1_wallet_rule_takes_either_kind() -> None:
    assert check_v1_wallet(VALID_WALLET) == VALID_WALLET
    assert check_v1_wallet(EIP55[1].lower()) == EIP55[1]
    with pytest.raises(ValidationFailed):
        check_v1_wallet("0x1234")


@pytest.mark.parametrize(("wallet", "kind"), [("", ""), (VALID_WALLET, "SOL"), (EIP55[0], "EVM")])
def test_wallet_type_told_by_the_address(wallet: str, kind: str) -> None:
    assert wallet_type(wallet) == kind
