"""Who may own a digital object or hold a function, and what information there is: from the Rules' own text.

- :class:`SubjectType`: the subjects of the ТКШ digital environment listed in §2.4 (item 4 of
  paragraph 2), and the suppliers of the utility services listed in §2.1 (item 1), one per service.
  The identifiers are stable CamelCase words (they are stored in objects); the titles are for
  people (documentation, e-mails) and may be reworded freely.
- :data:`INFORMATION_CATEGORIES`: the 15 categories of information of §4, in the Rules' order.
"""

from __future__ import annotations

import enum

from tksh.resources.common import Titles


class SubjectType(enum.StrEnum):
    """The kind of subject of the ТКШ digital environment (§2.4) or utility supplier by service (§2.1)."""

    AUTHORIZED_BODY = "AuthorizedBody"
    LOCAL_EXECUTIVE_BODY = "LocalExecutiveBody"
    NATURAL_MONOPOLY = "NaturalMonopoly"
    PROPERTY_OWNERS_ASSOCIATION = "PropertyOwnersAssociation"
    CONDOMINIUM_MANAGER = "CondominiumManager"
    APARTMENT_OWNER = "ApartmentOwner"
    NON_RESIDENTIAL_PREMISES_OWNER = "NonResidentialPremisesOwner"
    PARKING_PLACE_OWNER = "ParkingPlaceOwner"
    STORAGE_ROOM_OWNER = "StorageRoomOwner"
    OTHER_SUBJECT = "OtherSubject"
    WATER_SUPPLIER = "WaterSupplier"
    SEWERAGE_SUPPLIER = "SewerageSupplier"
    GAS_SUPPLIER = "GasSupplier"
    ELECTRICITY_SUPPLIER = "ElectricitySupplier"
    HEAT_SUPPLIER = "HeatSupplier"
    WASTE_REMOVAL_SUPPLIER = "WasteRemovalSupplier"
    ELEVATOR_SERVICE_SUPPLIER = "ElevatorServiceSupplier"


def _t(kk: str, ru: str, en: str) -> Titles:
    return Titles(kk=kk, ru=ru, en=en)


SUBJECT_TYPE_TITLES: dict[SubjectType, Titles] = {
    SubjectType.AUTHORIZED_BODY: _t("уәкілетті орган", "уполномоченный орган", "authorized body"),
    SubjectType.LOCAL_EXECUTIVE_BODY: _t(
        "жергілікті атқарушы орган", "местный исполнительный орган", "local executive body (akimat)"
    ),
    SubjectType.NATURAL_MONOPOLY: _t(
        "табиғи монополия субъектісі", "субъект естественной монополии", "natural monopoly subject"
    ),
    SubjectType.PROPERTY_OWNERS_ASSOCIATION: _t(
        "мүлік иелерінің бірлестігі", "объединение собственников имущества (ОСИ)", "property owners' association"
    ),
    SubjectType.CONDOMINIUM_MANAGER: _t(
        "кондоминиум объектісін басқару субъектісі",
        "субъект управления объектом кондоминиума",
        "condominium management subject",
    ),
    SubjectType.APARTMENT_OWNER: _t("пәтердің меншік иесі", "собственник квартиры", "apartment owner"),
    SubjectType.NON_RESIDENTIAL_PREMISES_OWNER: _t(
        "тұрғын емес үй-жайдың меншік иесі", "собственник нежилого помещения", "owner of non-residential premises"
    ),
    SubjectType.PARKING_PLACE_OWNER: _t(
        "тұрақ орнының меншік иесі", "собственник парковочного места", "owner of a parking place"
    ),
    SubjectType.STORAGE_ROOM_OWNER: _t("қойманың меншік иесі", "собственник кладовки", "owner of a storage room"),
    SubjectType.OTHER_SUBJECT: _t(
        "тұрғын үй қатынастары және тұрғын үй-коммуналдық шаруашылық саласындағы өзге де субъект",
        "иной субъект в сфере жилищных отношений и жилищно-коммунального хозяйства",
        "other subject of housing relations and housing & communal services",
    ),
    SubjectType.WATER_SUPPLIER: _t(
        "сумен жабдықтау қызметін жеткізуші", "поставщик услуг водоснабжения", "water supply provider"
    ),
    SubjectType.SEWERAGE_SUPPLIER: _t(
        "су бұру қызметін жеткізуші", "поставщик услуг водоотведения", "sewerage (water disposal) provider"
    ),
    SubjectType.GAS_SUPPLIER: _t(
        "газбен жабдықтау қызметін жеткізуші", "поставщик услуг газоснабжения", "gas supply provider"
    ),
    SubjectType.ELECTRICITY_SUPPLIER: _t(
        "электрмен жабдықтау қызметін жеткізуші", "поставщик услуг электроснабжения", "electricity supply provider"
    ),
    SubjectType.HEAT_SUPPLIER: _t(
        "жылумен жабдықтау қызметін жеткізуші", "поставщик услуг теплоснабжения", "heat supply provider"
    ),
    SubjectType.WASTE_REMOVAL_SUPPLIER: _t(
        "қоқысты шығару қызметін жеткізуші", "поставщик услуг вывоза мусора", "waste removal provider"
    ),
    SubjectType.ELEVATOR_SERVICE_SUPPLIER: _t(
        "лифтілерге қызмет көрсету қызметін жеткізуші",
        "поставщик услуг обслуживания лифтов",
        "elevator maintenance provider",
    ),
}

UTILITY_SUPPLIERS: frozenset[SubjectType] = frozenset(
    {
        SubjectType.WATER_SUPPLIER,
        SubjectType.SEWERAGE_SUPPLIER,
        SubjectType.GAS_SUPPLIER,
        SubjectType.ELECTRICITY_SUPPLIER,
        SubjectType.HEAT_SUPPLIER,
        SubjectType.WASTE_REMOVAL_SUPPLIER,
        SubjectType.ELEVATOR_SERVICE_SUPPLIER,
    }
)
"""The suppliers of utility (communal) services, one per service of §2.1."""

HOUSING_CATEGORIES: frozenset[int] = frozenset(range(1, 9))
"""§4 items 1–8: housing relations and the housing stock."""
COMMUNAL_CATEGORIES: frozenset[int] = frozenset(range(9, 16))
"""§4 items 9–15: communal (utility) services."""

INFORMATION_CATEGORIES: dict[int, Titles] = {
    1: _t(
        "көп пәтерлі тұрғын үйлерді есепке алу",
        "учёт многоквартирных жилых домов",
        "accounting of multi-apartment buildings",
    ),
    2: _t(
        "мүлік иелерінің бірлестігі немесе басқару субъектісі толтыратын көп пәтерлі тұрғын үй туралы ақпарат",
        "сведения о многоквартирном доме, заполняемые ОСИ или субъектом управления",
        "building data filled in by the association or the management subject",
    ),
    3: _t(
        "кондоминиум объектісін күрделі жөндеуге арналған жарналарды есепке алу",
        "учёт взносов на капитальный ремонт",
        "capital-repair contributions",
    ),
    4: _t(
        "ортақ мүлікті басқару және жөндеу жөніндегі жоспарлы іс-шаралар",
        "плановые мероприятия по управлению и ремонту общего имущества",
        "planned common-property maintenance and repair",
    ),
    5: _t(
        "мүлік иелері бірлестігі немесе басқару субъектісі қызметінің қорытындылары бойынша есептер",
        "отчёты о деятельности ОСИ или субъекта управления",
        "reports on the association's or manager's activity",
    ),
    6: _t(
        "меншік иелерінің жиналыстары, жиналыс және дауыс беру нәтижелерінің хаттамалары",
        "собрания собственников, протоколы собраний и итоги голосования",
        "owners' meetings, minutes and voting results",
    ),
    7: _t(
        "көп пәтерлі тұрғын үйлерді басқару жөніндегі өтінімдерді беру, өңдеу және орындау",
        "подача, обработка и исполнение заявок по управлению домом",
        "requests on building management: filing, processing, execution",
    ),
    8: _t(
        "ТКШ цифрлық орта субъектілері арасында жасалған шарттар",
        "договоры между субъектами цифровой среды ЖКХ",
        "contracts between subjects",
    ),
    9: _t(
        "коммуналдық қызметтерді жеткізушінің паспорты",
        "паспорт поставщика коммунальных услуг",
        "supplier passport",
    ),
    10: _t(
        "коммуналдық қызметтерді жеткізушілерді есепке алу",
        "учёт поставщиков коммунальных услуг",
        "registry of suppliers",
    ),
    11: _t(
        "коммуналдық қызметтерді тұтынушылардың жеке шоттары",
        "лицевые счета потребителей коммунальных услуг",
        "consumers' personal accounts",
    ),
    12: _t(
        "үйге ортақ және жеке есепке алу аспаптары",
        "общедомовые и индивидуальные приборы учёта",
        "common-building and individual meters",
    ),
    13: _t(
        "есепке алу аспаптарының көрсеткіштері",
        "показания приборов учёта",
        "meter readings",
    ),
    14: _t(
        "коммуналдық қызметтердің құнын тарифтеу, есептеу, төлеу",
        "тарифы, начисления и оплата коммунальных услуг",
        "tariffs, billing, payment",
    ),
    15: _t(
        "коммуналдық инженерлік желілер",
        "коммунальные инженерные сети",
        "engineering networks (heat, water, sewerage, treatment plants, electricity, gas)",
    ),
}
