"""Shared inputs of the registration tests: a function directory and a complete application."""

from __future__ import annotations

from typing import Any

BIN = "140540001231"  # valid check digit, first weights
BIN_SECOND_WEIGHTS = "301240000201"  # first sum mod 11 is 10; the second weights give 1

DIRECTORY: dict[str, Any] = {
    "owners-association": {
        "spec": {
            "titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
            "subjectTypes": ["PropertyOwnersAssociation"],
            "rights": [
                {"category": 1, "actions": ["read"]},
                {"category": 2, "actions": ["read", "write"]},
                {"category": 5, "actions": ["read", "write", "sign"]},
                {"category": 6, "actions": ["read", "write", "sign"]},
            ],
        },
        "status": {"phase": "Active"},
    },
    "meetings": {
        "spec": {
            "titles": {"kk": "Жиналыстар", "ru": "Собрания", "en": "Meetings"},
            "subjectTypes": ["PropertyOwnersAssociation", "CondominiumManager"],
            "rights": [{"category": 7, "actions": ["read", "write"]}],
        },
        "status": {"phase": "Active"},
    },
    "utility-supply": {
        "spec": {
            "titles": {"kk": "Жеткізу", "ru": "Поставка", "en": "Supply"},
            "subjectTypes": ["WaterSupplier", "HeatSupplier"],
            "rights": [{"category": 11, "actions": ["read", "write"]}, {"category": 14, "actions": ["read"]}],
        },
        "status": {"phase": "Active"},
    },
    "broken": {
        "spec": {
            "titles": {"kk": "Бұзық", "ru": "Сломано", "en": "Broken"},
            "subjectTypes": ["PropertyOwnersAssociation"],
            "rights": [{"category": 3, "actions": ["read"]}],
        },
        "status": {"phase": "Invalid"},
    },
}

APPLICATION: dict[str, Any] = {
    "owner": {
        "bin": BIN,
        "name": "ОСИ «Достық 12»",
        "subjectType": "PropertyOwnersAssociation",
        "email": "board@dostyk12.example.kz",
        "phone": "+77011234567",
    },
    "functions": ["owners-association", "meetings"],
    "categories": [2, 5, 6, 7],
    "endpoint": {"url": "https://osi.example.kz/api"},
}
