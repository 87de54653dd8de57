"""The shapes of the demo centers: how each one writes the same kind of data.

A shape says, per CDM table, which file (and sheet) the center sends, what it calls each
column, how it writes codes, booleans, dates and numbers, and in which unit and precision.
The generator renders the canonical truth through a shape; the matching mapping in
`mappings/<key>.yaml` reads it back. Keeping both in plain data makes the round trip testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Col:
    """One source column: its name, and how the center writes the CDM value in it."""

    src: str
    recode: dict[str, str] | None = None  # canonical code/bool text -> as the center writes it
    unit: str | None = None  # the center's unit (converted from the CDM column's unit)
    dec: int | None = None  # decimals the center keeps (in its own unit)
    fmt: str | None = None  # strftime for a date/timestamp column, or "serial" (Excel serial day)


@dataclass(frozen=True)
class Analyte:
    label: str  # long format: the analyte's name in the file; wide format: the column header
    unit: str  # the unit as the center writes it (a spelling units.yaml knows)
    dec: int
    lod_prefix: str = "<"


@dataclass(frozen=True)
class TableShape:
    file: str
    cols: dict[str, Col]
    sheet: str | None = None
    labs: str | None = None  # None, "long" or "wide"
    analytes: dict[str, Analyte] = field(default_factory=dict)
    analyte_col: str | None = None  # long: column naming the analyte
    value_col: str | None = None  # long: the result
    unit_col: str | None = None  # long: the unit of each row
    lod_col: Col | None = None  # a below-LOD flag column (instead of a '<' prefix)


@dataclass(frozen=True)
class Shape:
    key: str
    center_id: str
    id_prefix: str
    writer: str  # csv | excel | spss
    tables: dict[str, list[TableShape]]
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    date_fmt: str = "%Y-%m-%d"
    ts_fmt: str = "%Y-%m-%d %H:%M"
    bools: tuple[str, str] = ("true", "false")
    crs_scale: str = "lee2014"
    product_p: dict[str, float] = field(default_factory=dict)
    content: dict[str, float] = field(default_factory=dict)  # x10^11 per unit as the center counts
    units_per_product: dict[str, tuple[int, int]] = field(default_factory=dict)  # inclusive range
    drug_names: dict[str, list[str]] = field(default_factory=dict)
    death_causes: dict[str, str] = field(default_factory=dict)
    workbook: str | None = None  # excel: the one workbook holding every sheet
    header_row: int = 1  # excel: row of the column names
    title: str | None = None  # excel: a title line above the header


CANON_DEATH = ["disease progression", "infection", "bleeding", "CRS", "other"]

# ----------------------------------------------------------------------------------------
# Hangzhou: GBK CSV, Chinese headers and codes, counts x10^9/L, platelets in 治疗量.
# ----------------------------------------------------------------------------------------
_YN_CN = {"true": "是", "false": "否"}
CN = Shape(
    key="cn_hangzhou",
    center_id="CN-HZ",
    id_prefix="HZ",
    writer="csv",
    encoding="gbk",
    delimiter=",",
    decimal=".",
    date_fmt="%Y/%m/%d",
    ts_fmt="%Y/%m/%d %H:%M",
    bools=("是", "否"),
    crs_scale="lee2014",
    product_p={"apheresis": 0.85, "whole_blood_derived": 0.15},
    content={"apheresis": 2.5, "whole_blood_derived": 0.2},
    units_per_product={"apheresis": (1, 2), "whole_blood_derived": (10, 12)},
    drug_names={
        "tocilizumab": ["托珠单抗", "托珠单抗注射液", "雅美罗(托珠单抗)"],
        "corticosteroid": ["地塞米松", "甲泼尼龙", "甲强龙"],
        "tpo_ra": ["艾曲泊帕", "海曲泊帕", "罗米司亭"],
        "il11": ["重组人白介素-11", "白介素11"],
        "ivig": ["静注人免疫球蛋白", "丙种球蛋白"],
        "gcsf": ["重组人粒细胞刺激因子", "G-CSF"],
    },
    death_causes={"disease progression": "疾病进展", "infection": "感染", "bleeding": "出血", "CRS": "细胞因子释放综合征", "other": "其他"},
    tables={
        "patients": [
            TableShape(
                file="患者信息.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "sex": Col("性别", {"M": "男", "F": "女", "U": "未知"}),
                    "age_years": Col("年龄"),
                    "height_cm": Col("身高(cm)", unit="cm", dec=1),
                    "weight_kg": Col("体重(kg)", unit="kg", dec=1),
                    "diagnosis": Col("诊断", {"B-ALL": "B-ALL", "T-ALL": "T-ALL", "other": "其他"}),
                    "disease_status": Col("疾病状态", {"primary_refractory": "原发难治", "relapsed": "复发"}),
                    "n_relapses": Col("复发次数"),
                    "prior_allo_hsct": Col("既往异基因移植", _YN_CN),
                    "extramedullary": Col("髓外病变", _YN_CN),
                    "bm_blast_pct": Col("骨髓原始细胞(%)", unit="%", dec=1),
                },
            )
        ],
        "treatments": [
            TableShape(
                file="治疗信息.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "treatment_type": Col("治疗方式", {"car_t": "CAR-T细胞治疗", "chemotherapy": "挽救化疗"}),
                    "regimen": Col("方案"),
                    "car_target": Col("CAR靶点"),
                    "index_date": Col("回输或化疗日期"),
                },
            )
        ],
        "transfusions": [
            TableShape(
                file="血小板输注.csv",
                cols={
                    "transfusion_id": Col("输注编号"),
                    "patient_id": Col("住院号"),
                    "transfused_at": Col("输注开始时间"),
                    "product": Col("血小板类型", {"apheresis": "单采血小板", "whole_blood_derived": "手工分离血小板"}),
                    "units_reported": Col("输注量(治疗量/U)"),
                    "storage_h": Col("保存时间(小时)", unit="h", dec=0),
                    "abo_compatible": Col("ABO同型", _YN_CN),
                    "crossmatched": Col("交叉配型", _YN_CN),
                    "pre_count_e9l": Col("输注前血小板(×10^9/L)", unit="10^9/L", dec=0),
                    "pre_count_at": Col("输注前检测时间"),
                    "post_count_e9l": Col("输注后血小板(×10^9/L)", unit="10^9/L", dec=0),
                    "post_count_at": Col("输注后检测时间"),
                },
            )
        ],
        "labs": [
            TableShape(
                file="血常规及生化.csv",
                labs="long",
                cols={"patient_id": Col("住院号"), "measured_at": Col("采样时间")},
                analyte_col="检验项目",
                value_col="结果",
                unit_col="单位",
                analytes={
                    "PLT": Analyte("血小板计数", "×10^9/L", 0),
                    "ANC": Analyte("中性粒细胞绝对值", "×10^9/L", 2),
                    "WBC": Analyte("白细胞计数", "10*9/L", 2),
                    "HGB": Analyte("血红蛋白", "g/L", 0),
                    "CRP": Analyte("C反应蛋白", "mg/L", 1),
                    "FERRITIN": Analyte("铁蛋白", "ng/ml", 0),
                },
            ),
            TableShape(
                file="细胞因子.csv",
                labs="wide",
                cols={"patient_id": Col("住院号"), "measured_at": Col("采样时间")},
                analytes={
                    "IL6": Analyte("IL-6(pg/mL)", "pg/mL", 1, "<"),
                    "IL10": Analyte("IL-10(pg/mL)", "pg/mL", 1, "＜"),
                    "IFNG": Analyte("IFN-γ(pg/mL)", "pg/mL", 1, "<"),
                },
            ),
        ],
        "crs_assessments": [
            TableShape(
                file="CRS评估.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "assessed_on": Col("评估日期"),
                    "max_temp_c": Col("最高体温(℃)", unit="degC", dec=1),
                    "hypotension": Col("低血压", _YN_CN),
                    "vasopressors": Col("血管活性药物种类数"),
                    "ne_equiv_ug_min": Col("去甲肾上腺素当量(μg/min)", unit="ug/min", dec=1),
                    "vasopressin": Col("血管加压素", _YN_CN),
                    "fio2_pct": Col("吸氧浓度(%)", unit="%", dec=0),
                    "o2_device": Col(
                        "氧疗方式",
                        {
                            "none": "无",
                            "low_flow": "鼻导管",
                            "high_flow": "经鼻高流量",
                            "facemask": "普通面罩",
                            "nonrebreather": "储氧面罩",
                            "venturi": "文丘里面罩",
                            "cpap": "CPAP",
                            "bipap": "BiPAP",
                            "ventilator": "有创机械通气",
                        },
                    ),
                    "o2_flow_l_min": Col("氧流量(L/min)", unit="L/min", dec=1),
                    "organ_toxicity_grade": Col("器官毒性分级"),
                    "transaminitis_grade": Col("转氨酶升高分级"),
                    "reported_grade": Col("CRS分级", {str(g): f"{g}级" for g in range(6)}),
                },
            )
        ],
        "bleeding_events": [
            TableShape(
                file="出血事件.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "onset_on": Col("出血日期"),
                    "site": Col(
                        "出血部位",
                        {"skin": "皮肤", "mucosal": "黏膜", "gi": "消化道", "gu": "泌尿道", "pulmonary": "肺", "cns": "颅内", "retinal": "视网膜", "other": "其他"},
                    ),
                    "who_grade": Col("WHO分级", {str(g): f"{g}级" for g in range(1, 5)}),
                    "rbc_transfusion_24h": Col("24小时内输红细胞", _YN_CN),
                    "hemodynamic_instability": Col("血流动力学不稳定", _YN_CN),
                    "fatal": Col("致死性出血", _YN_CN),
                },
            )
        ],
        "medications": [
            TableShape(file="用药记录.csv", cols={"patient_id": Col("住院号"), "drug": Col("药物名称"), "started_on": Col("开始日期"), "n_doses": Col("用药次数")})
        ],
        "infections": [
            TableShape(
                file="感染.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "onset_on": Col("感染日期"),
                    "kind": Col("感染类型", {"bacterial": "细菌", "viral": "病毒", "fungal": "真菌", "unknown": "不明"}),
                },
            )
        ],
        "outcomes": [
            TableShape(
                file="转归.csv",
                cols={
                    "patient_id": Col("住院号"),
                    "response": Col("疗效评估", {"CR": "CR", "CRi": "CRi", "PR": "PR", "NR": "NR", "NE": "不可评估"}),
                    "death_on": Col("死亡日期"),
                    "death_cause": Col("死亡原因"),
                    "last_followup_on": Col("末次随访日期"),
                },
            )
        ],
    },
)

# ----------------------------------------------------------------------------------------
# Leiden: Latin-1, semicolons, decimal commas, DD.MM.YYYY, Dutch codes, cytokines in ng/L.
# ----------------------------------------------------------------------------------------
_YN_NL = {"true": "ja", "false": "nee"}
EU = Shape(
    key="eu_leiden",
    center_id="NL-LEI",
    id_prefix="LEI",
    writer="csv",
    encoding="latin-1",
    delimiter=";",
    decimal=",",
    date_fmt="%d.%m.%Y",
    ts_fmt="%d.%m.%Y %H:%M",
    bools=("ja", "nee"),
    crs_scale="astct2019",
    product_p={"apheresis": 0.4, "pooled": 0.55, "whole_blood_derived": 0.05},
    content={"apheresis": 3.0, "pooled": 3.5, "whole_blood_derived": 0.7},
    units_per_product={"apheresis": (1, 1), "pooled": (1, 1), "whole_blood_derived": (4, 5)},
    drug_names={
        "tocilizumab": ["RoActemra", "Tocilizumab", "tocilizumab (RoActemra)"],
        "corticosteroid": ["Dexamethason", "Methylprednisolon", "Prednisolon"],
        "tpo_ra": ["Romiplostim (Nplate)", "Eltrombopag (Revolade)"],
        "il11": ["Oprelvekin"],
        "ivig": ["Immunoglobuline IV", "IVIG"],
        "gcsf": ["Filgrastim", "Pegfilgrastim (Neulasta)"],
    },
    death_causes={"disease progression": "progressie", "infection": "infectie", "bleeding": "bloeding", "CRS": "CRS", "other": "overig"},
    tables={
        "patients": [
            TableShape(
                file="patienten.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "sex": Col("Geslacht", {"M": "M", "F": "V", "U": "O"}),
                    "age_years": Col("Leeftijd"),
                    "height_cm": Col("Lengte (m)", unit="m", dec=2),
                    "weight_kg": Col("Gewicht (kg)", unit="kg", dec=1),
                    "diagnosis": Col("Diagnose", {"B-ALL": "B-ALL", "T-ALL": "T-ALL", "other": "anders"}),
                    "disease_status": Col("Ziektestatus", {"primary_refractory": "primair refractair", "relapsed": "recidief"}),
                    "n_relapses": Col("Aantal recidieven"),
                    "prior_allo_hsct": Col("Eerdere allo-SCT", _YN_NL),
                    "extramedullary": Col("Extramedullair", _YN_NL),
                    "bm_blast_pct": Col("Blasten beenmerg (%)", unit="%", dec=1),
                },
            )
        ],
        "treatments": [
            TableShape(
                file="behandeling.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "treatment_type": Col("Behandeling", {"car_t": "CAR-T", "chemotherapy": "chemotherapie"}),
                    "regimen": Col("Schema"),
                    "car_target": Col("CAR-doel"),
                    "index_date": Col("Startdatum"),
                },
            )
        ],
        "transfusions": [
            TableShape(
                file="transfusies.csv",
                cols={
                    "transfusion_id": Col("Transfusienummer"),
                    "patient_id": Col("Patiëntnummer"),
                    "transfused_at": Col("Start transfusie"),
                    "product": Col("Product", {"apheresis": "TC aferese", "pooled": "TC pool (5 donoren)", "whole_blood_derived": "TC enkelvoudig"}),
                    "units_reported": Col("Eenheden"),
                    "storage_h": Col("Bewaarduur (dagen)", unit="d", dec=1),
                    "abo_compatible": Col("ABO-compatibel", _YN_NL),
                    "crossmatched": Col("HLA-gematcht", _YN_NL),
                    "pre_count_e9l": Col("Trombocyten voor (x10^9/l)", unit="10^9/L", dec=0),
                    "pre_count_at": Col("Tijdstip voor"),
                    "post_count_e9l": Col("Trombocyten na (x10^9/l)", unit="10^9/L", dec=0),
                    "post_count_at": Col("Tijdstip na"),
                },
            )
        ],
        "labs": [
            TableShape(
                file="lab.csv",
                labs="long",
                cols={"patient_id": Col("Patiëntnummer"), "measured_at": Col("Afnamemoment")},
                analyte_col="Bepaling",
                value_col="Uitslag",
                unit_col="Eenheid",
                analytes={
                    "PLT": Analyte("Trombocyten", "x10^9/l", 0),
                    "ANC": Analyte("Neutrofielen", "x10^9/l", 2),
                    "WBC": Analyte("Leukocyten", "x10^9/l", 2),
                    "HGB": Analyte("Hemoglobine", "g/dl", 1),
                    "CRP": Analyte("CRP", "mg/l", 1),
                    "FERRITIN": Analyte("Ferritine", "µg/l", 0),
                    "IL6": Analyte("IL-6", "ng/l", 1),
                    "IL10": Analyte("IL-10", "ng/l", 1),
                    "IFNG": Analyte("IFN-gamma", "ng/l", 1),
                },
            )
        ],
        "crs_assessments": [
            TableShape(
                file="crs.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "assessed_on": Col("Datum"),
                    "max_temp_c": Col("Max. temperatuur (°C)", unit="degC", dec=1),
                    "hypotension": Col("Hypotensie", _YN_NL),
                    "vasopressors": Col("Aantal vasopressoren"),
                    "ne_equiv_ug_min": Col("NA-equivalent (µg/min)", unit="ug/min", dec=1),
                    "vasopressin": Col("Vasopressine", _YN_NL),
                    "fio2_pct": Col("FiO2 (%)", unit="%", dec=0),
                    "o2_device": Col(
                        "Zuurstoftoediening",
                        {
                            "none": "geen",
                            "low_flow": "neusbril",
                            "high_flow": "high-flow",
                            "facemask": "masker",
                            "nonrebreather": "non-rebreathing masker",
                            "venturi": "venturimasker",
                            "cpap": "CPAP",
                            "bipap": "BiPAP",
                            "ventilator": "beademing",
                        },
                    ),
                    "o2_flow_l_min": Col("Flow (l/min)", unit="L/min", dec=1),
                    "organ_toxicity_grade": Col("Orgaantoxiciteit (graad)"),
                    "transaminitis_grade": Col("Transaminitis (graad)"),
                    "reported_grade": Col("CRS-graad", {str(g): f"Graad {g}" for g in range(6)}),
                },
            )
        ],
        "bleeding_events": [
            TableShape(
                file="bloedingen.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "onset_on": Col("Begindatum"),
                    "site": Col(
                        "Lokalisatie",
                        {"skin": "huid", "mucosal": "slijmvlies", "gi": "maag-darm", "gu": "urogenitaal", "pulmonary": "long", "cns": "CZS", "retinal": "retina", "other": "overig"},
                    ),
                    "who_grade": Col("WHO-graad"),
                    "rbc_transfusion_24h": Col("Ery-transfusie binnen 24 uur", _YN_NL),
                    "hemodynamic_instability": Col("Hemodynamisch instabiel", _YN_NL),
                    "fatal": Col("Fataal", _YN_NL),
                },
            )
        ],
        "medications": [
            TableShape(file="medicatie.csv", cols={"patient_id": Col("Patiëntnummer"), "drug": Col("Middel"), "started_on": Col("Startdatum"), "n_doses": Col("Aantal doses")})
        ],
        "infections": [
            TableShape(
                file="infecties.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "onset_on": Col("Datum"),
                    "kind": Col("Verwekker", {"bacterial": "bacterieel", "viral": "viraal", "fungal": "schimmel", "unknown": "onbekend"}),
                },
            )
        ],
        "outcomes": [
            TableShape(
                file="uitkomst.csv",
                cols={
                    "patient_id": Col("Patiëntnummer"),
                    "response": Col("Respons dag 28"),
                    "death_on": Col("Overlijdensdatum"),
                    "death_cause": Col("Doodsoorzaak"),
                    "last_followup_on": Col("Laatste follow-up"),
                },
            )
        ],
    },
)

# ----------------------------------------------------------------------------------------
# Boston: one Excel workbook, counts per uL, degF, inches, pounds, Y/N, ASTCT grading.
# ----------------------------------------------------------------------------------------
_YN_US = {"true": "Y", "false": "N"}
US = Shape(
    key="us_boston",
    center_id="US-BOS",
    id_prefix="BOS",
    writer="excel",
    workbook="boston_registry_export.xlsx",
    header_row=3,
    title="Boston CAR-T / salvage registry export (de-identified)",
    bools=("Y", "N"),
    crs_scale="astct2019",
    product_p={"apheresis": 0.8, "pooled": 0.1, "whole_blood_derived": 0.1},
    content={"apheresis": 3.0, "pooled": 3.0, "whole_blood_derived": 0.55},
    units_per_product={"apheresis": (1, 1), "pooled": (1, 1), "whole_blood_derived": (4, 6)},
    drug_names={
        "tocilizumab": ["Tocilizumab (Actemra)", "ACTEMRA", "tocilizumab"],
        "corticosteroid": ["Dexamethasone", "Methylprednisolone (Solu-Medrol)", "Hydrocortisone"],
        "tpo_ra": ["Romiplostim (Nplate)", "Eltrombopag (Promacta)", "Avatrombopag"],
        "il11": ["Oprelvekin (Neumega)"],
        "ivig": ["IVIG", "Immune globulin IV"],
        "gcsf": ["Filgrastim (Neupogen)", "Pegfilgrastim"],
    },
    death_causes={"disease progression": "Progressive disease", "infection": "Infection", "bleeding": "Hemorrhage", "CRS": "CRS", "other": "Other"},
    tables={
        "patients": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Demographics",
                cols={
                    "patient_id": Col("MRN"),
                    "sex": Col("Sex", {"M": "Male", "F": "Female", "U": "Unknown"}),
                    "age_years": Col("Age (yr)"),
                    "height_cm": Col("Height (in)", unit="in", dec=1),
                    "weight_kg": Col("Weight (lb)", unit="lb", dec=1),
                    "diagnosis": Col("Diagnosis", {"B-ALL": "B-cell ALL", "T-ALL": "T-cell ALL", "other": "Other"}),
                    "disease_status": Col("Disease Status", {"primary_refractory": "Primary refractory", "relapsed": "Relapsed"}),
                    "n_relapses": Col("# Relapses"),
                    "prior_allo_hsct": Col("Prior Allo HCT", _YN_US),
                    "extramedullary": Col("EMD", _YN_US),
                    "bm_blast_pct": Col("BM Blasts (%)", unit="%", dec=1),
                },
            )
        ],
        "treatments": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Treatment",
                cols={
                    "patient_id": Col("MRN"),
                    "treatment_type": Col("Therapy", {"car_t": "CAR-T", "chemotherapy": "Salvage chemo"}),
                    "regimen": Col("Regimen"),
                    "car_target": Col("CAR Target"),
                    "index_date": Col("Index Date", fmt="serial"),
                },
            )
        ],
        "transfusions": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Platelet Transfusions",
                cols={
                    "transfusion_id": Col("Transfusion ID"),
                    "patient_id": Col("MRN"),
                    "transfused_at": Col("Start Time"),
                    "product": Col("Product", {"apheresis": "Apheresis PLT", "pooled": "Pooled PLT", "whole_blood_derived": "WB-derived PLT"}),
                    "units_reported": Col("Units"),
                    "storage_h": Col("Storage (h)", unit="h", dec=0),
                    "abo_compatible": Col("ABO Compatible", _YN_US),
                    "crossmatched": Col("Crossmatched/HLA", _YN_US),
                    "pre_count_e9l": Col("Pre PLT (/uL)", unit="/uL", dec=0),
                    "pre_count_at": Col("Pre PLT Time"),
                    "post_count_e9l": Col("Post PLT (/uL)", unit="/uL", dec=0),
                    "post_count_at": Col("Post PLT Time"),
                },
            )
        ],
        "labs": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Labs",
                labs="wide",
                cols={"patient_id": Col("MRN"), "measured_at": Col("Collected")},
                analytes={
                    "PLT": Analyte("PLT (/uL)", "/uL", 0),
                    "ANC": Analyte("ANC (/uL)", "/uL", 0),
                    "WBC": Analyte("WBC (/uL)", "/uL", 0),
                    "HGB": Analyte("Hgb (g/dL)", "g/dL", 1),
                    "CRP": Analyte("CRP (mg/dL)", "mg/dL", 2),
                    "FERRITIN": Analyte("Ferritin (ng/mL)", "ng/mL", 0),
                    "IL6": Analyte("IL-6 (pg/mL)", "pg/mL", 1),
                    "IL10": Analyte("IL-10 (pg/mL)", "pg/mL", 1),
                    "IFNG": Analyte("IFN-g (pg/mL)", "pg/mL", 1),
                },
            )
        ],
        "crs_assessments": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="CRS",
                cols={
                    "patient_id": Col("MRN"),
                    "assessed_on": Col("Date"),
                    "max_temp_c": Col("Tmax (F)", unit="degF", dec=1),
                    "hypotension": Col("Hypotension", _YN_US),
                    "vasopressors": Col("# Pressors"),
                    "ne_equiv_ug_min": Col("NE-eq (mcg/min)", unit="ug/min", dec=1),
                    "vasopressin": Col("Vasopressin", _YN_US),
                    "fio2_pct": Col("FiO2 (%)", unit="%", dec=0),
                    "o2_device": Col(
                        "O2 Device",
                        {
                            "none": "Room air",
                            "low_flow": "Nasal cannula",
                            "high_flow": "HFNC",
                            "facemask": "Simple mask",
                            "nonrebreather": "NRB",
                            "venturi": "Venturi",
                            "cpap": "CPAP",
                            "bipap": "BiPAP",
                            "ventilator": "Intubated",
                        },
                    ),
                    "o2_flow_l_min": Col("O2 Flow (L/min)", unit="L/min", dec=1),
                    "organ_toxicity_grade": Col("Organ Tox Grade"),
                    "transaminitis_grade": Col("Transaminitis Grade"),
                    "reported_grade": Col("CRS Grade (ASTCT)"),
                },
            )
        ],
        "bleeding_events": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Bleeding",
                cols={
                    "patient_id": Col("MRN"),
                    "onset_on": Col("Onset"),
                    "site": Col(
                        "Site",
                        {"skin": "Skin", "mucosal": "Mucosal", "gi": "GI", "gu": "GU", "pulmonary": "Pulmonary", "cns": "CNS", "retinal": "Retinal", "other": "Other"},
                    ),
                    "who_grade": Col("WHO Grade"),
                    "rbc_transfusion_24h": Col("RBC within 24h", _YN_US),
                    "hemodynamic_instability": Col("Hemodynamic Instability", _YN_US),
                    "fatal": Col("Fatal", _YN_US),
                },
            )
        ],
        "medications": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Medications",
                cols={"patient_id": Col("MRN"), "drug": Col("Medication"), "started_on": Col("Start Date"), "n_doses": Col("Doses")},
            )
        ],
        "infections": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Infections",
                cols={
                    "patient_id": Col("MRN"),
                    "onset_on": Col("Onset"),
                    "kind": Col("Type", {"bacterial": "Bacterial", "viral": "Viral", "fungal": "Fungal", "unknown": "Unknown"}),
                },
            )
        ],
        "outcomes": [
            TableShape(
                file="boston_registry_export.xlsx",
                sheet="Outcomes",
                cols={
                    "patient_id": Col("MRN"),
                    "response": Col("Best Response (D28)"),
                    "death_on": Col("Date of Death", fmt="%m/%d/%Y"),
                    "death_cause": Col("Cause of Death"),
                    "last_followup_on": Col("Last Follow-up", fmt="%m/%d/%Y"),
                },
            )
        ],
    },
)

# ----------------------------------------------------------------------------------------
# Milan: SPSS .sav files, numeric codes with Italian value labels, typed dates.
# ----------------------------------------------------------------------------------------
_YN_IT = {"true": "Sì", "false": "No"}
IT = Shape(
    key="it_milan",
    center_id="IT-MI",
    id_prefix="MI",
    writer="spss",
    bools=("Sì", "No"),
    crs_scale="lee2014",
    product_p={"apheresis": 0.7, "pooled": 0.3},
    content={"apheresis": 3.0, "pooled": 2.5},
    units_per_product={"apheresis": (1, 1), "pooled": (1, 1)},
    drug_names={
        "tocilizumab": ["Tocilizumab"],
        "corticosteroid": ["Desametasone", "Metilprednisolone"],
        "tpo_ra": ["Eltrombopag"],
        "il11": ["Oprelvekin"],
        "ivig": ["Immunoglobuline EV"],
        "gcsf": ["Filgrastim"],
    },
    death_causes={"disease progression": "progressione", "infection": "infezione", "bleeding": "emorragia", "CRS": "CRS", "other": "altro"},
    tables={
        "patients": [
            TableShape(
                file="pazienti.sav",
                cols={
                    "patient_id": Col("codice"),
                    "sex": Col("sesso", {"M": "Maschio", "F": "Femmina", "U": "Non noto"}),
                    "age_years": Col("eta"),
                    "height_cm": Col("altezza_cm", unit="cm", dec=0),
                    "weight_kg": Col("peso_kg", unit="kg", dec=1),
                    "diagnosis": Col("diagnosi", {"B-ALL": "LLA-B", "T-ALL": "LLA-T", "other": "Altro"}),
                    "disease_status": Col("stato", {"primary_refractory": "Refrattaria primaria", "relapsed": "Recidiva"}),
                    "n_relapses": Col("n_recidive"),
                    "prior_allo_hsct": Col("allo_tcse", _YN_IT),
                    "extramedullary": Col("extramidollare", _YN_IT),
                    "bm_blast_pct": Col("blasti_mo", unit="%", dec=0),
                },
            )
        ],
        "treatments": [
            TableShape(
                file="trattamenti.sav",
                cols={
                    "patient_id": Col("codice"),
                    "treatment_type": Col("terapia", {"car_t": "CAR-T", "chemotherapy": "Chemioterapia"}),
                    "regimen": Col("schema"),
                    "car_target": Col("bersaglio"),
                    "index_date": Col("data_indice"),
                },
            )
        ],
        "transfusions": [
            TableShape(
                file="trasfusioni.sav",
                cols={
                    "transfusion_id": Col("id_trasf"),
                    "patient_id": Col("codice"),
                    "transfused_at": Col("inizio"),
                    "product": Col("prodotto", {"apheresis": "Aferesi", "pooled": "Pool"}),
                    "units_reported": Col("unita"),
                    "storage_h": Col("conservazione_h", unit="h", dec=0),
                    "abo_compatible": Col("abo_comp", _YN_IT),
                    "crossmatched": Col("hla", _YN_IT),
                    "pre_count_e9l": Col("plt_pre", unit="10^9/L", dec=0),
                    "pre_count_at": Col("ora_pre"),
                    "post_count_e9l": Col("plt_post", unit="10^9/L", dec=0),
                    "post_count_at": Col("ora_post"),
                },
            )
        ],
        "labs": [
            TableShape(
                file="laboratorio.sav",
                labs="long",
                cols={"patient_id": Col("codice"), "measured_at": Col("prelievo")},
                analyte_col="esame",
                value_col="valore",
                unit_col="unita_misura",
                lod_col=Col("sotto_lod", _YN_IT),
                analytes={
                    "PLT": Analyte("Piastrine", "10^3/uL", 0),
                    "ANC": Analyte("Neutrofili", "10^3/uL", 2),
                    "WBC": Analyte("Leucociti", "10^3/uL", 2),
                    "HGB": Analyte("Emoglobina", "g/dL", 1),
                    "CRP": Analyte("PCR", "mg/dL", 2),
                    "FERRITIN": Analyte("Ferritina", "ng/mL", 0),
                    "IL6": Analyte("IL-6", "pg/mL", 1),
                    "IL10": Analyte("IL-10", "pg/mL", 1),
                    "IFNG": Analyte("IFN-gamma", "pg/mL", 1),
                },
            )
        ],
        "crs_assessments": [
            TableShape(
                file="crs.sav",
                cols={
                    "patient_id": Col("codice"),
                    "assessed_on": Col("data"),
                    "max_temp_c": Col("tmax", unit="degC", dec=1),
                    "hypotension": Col("ipotensione", _YN_IT),
                    "vasopressors": Col("n_vasopressori"),
                    "ne_equiv_ug_min": Col("noradrenalina_eq", unit="ug/min", dec=1),
                    "vasopressin": Col("vasopressina", _YN_IT),
                    "fio2_pct": Col("fio2", unit="%", dec=0),
                    "o2_device": Col(
                        "ossigeno",
                        {
                            "none": "Nessuno",
                            "low_flow": "Cannule nasali",
                            "high_flow": "Alti flussi",
                            "facemask": "Maschera semplice",
                            "nonrebreather": "Maschera con reservoir",
                            "venturi": "Venturi",
                            "cpap": "CPAP",
                            "bipap": "NIV",
                            "ventilator": "Ventilazione meccanica",
                        },
                    ),
                    "o2_flow_l_min": Col("flusso_o2", unit="L/min", dec=1),
                    "organ_toxicity_grade": Col("tox_organo"),
                    "transaminitis_grade": Col("tox_transaminasi"),
                    "reported_grade": Col("grado_crs"),
                },
            )
        ],
        "outcomes": [
            TableShape(
                file="esiti.sav",
                cols={
                    "patient_id": Col("codice"),
                    "response": Col("risposta", {"CR": "RC", "CRi": "RCi", "PR": "RP", "NR": "NR", "NE": "Non valutabile"}),
                    "death_on": Col("data_decesso"),
                    "death_cause": Col("causa_decesso"),
                    "last_followup_on": Col("ultimo_fu"),
                },
            )
        ],
    },
)

SHAPES: dict[str, Shape] = {s.key: s for s in (CN, EU, US, IT)}
SHAPE_ORDER = ["cn_hangzhou", "eu_leiden", "us_boston", "it_milan"]
