"""Real listings files, written to disk the way operators' tools write them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from openpyxl import Workbook

HEADER = [
    "房源编号",
    "城市",
    "标题",
    "区域",
    "地址",
    "价格（元）",
    "面积（㎡）",
    "户型",
    "封面图",
    "详情链接",
    "标签",
    "排序",
    "上架",
]


def row(n: int, city: str = "上海", **over) -> list:
    values = {
        "id": f"SH{n:04d}",
        "city": city,
        "title": f"{city}精装两居 {n}",
        "district": "浦东新区",
        "address": f"世纪大道 {n} 号",
        "price": f"{4500 + n}.50",
        "area": "89.5",
        "layout": "2室1厅",
        "cover": f"https://img.example.com/{n}.jpg",
        "detail": f"https://example.com/listing/{n}",
        "tags": "近地铁|南北通透",
        "order": str(n),
        "active": "是",
    }
    values.update(over)
    return list(values.values())


def csv_bytes(rows: list[list], header: list | None = None, encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER if header is None else header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def write_csv(path: Path, rows: list[list], **kwargs) -> Path:
    path.write_bytes(csv_bytes(rows, **kwargs))
    return path


def write_xlsx(path: Path, rows: list[list], header: list | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER if header is None else header)
    for values in rows:
        sheet.append(values)
    workbook.save(path)
    return path
