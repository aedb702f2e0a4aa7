"""A component type's settings form speaks the admin's language: the schema keeps
plain English texts (served and validated as they are), the form translates them."""

import pytest
from django.utils import translation

from components import registry
from components.forms import config_fields

pytestmark = pytest.mark.chinese


def test_component_settings_form_labels_and_help_are_chinese_while_the_schema_stays_english():
    paid = config_fields("paid_sale")
    assert paid["cfg_button_text"].label == "按钮文字"
    assert paid["cfg_show_stock"].label == "显示剩余库存"
    assert config_fields("coupon_pack")["cfg_show_remaining"].label == "显示剩余数量"
    assert "导入任务" in str(config_fields("listing")["cfg_listings_per_city"].help_text)
    assert registry.get("paid_sale").schema["properties"]["button_text"]["title"] == "Button text"
    with translation.override("en"):
        assert config_fields("paid_sale")["cfg_button_text"].label == "Button text"


def test_banner_image_pattern_error_is_chinese():
    with pytest.raises(registry.ConfigInvalid) as refused:
        registry.config_validate("banner", {"image": "ftp://x"})
    assert "请填写以 http:// 或 https:// 开头的网址，或上传一张图片。" in refused.value.errors["image"]
