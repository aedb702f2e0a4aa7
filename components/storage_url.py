"""MEDIA_STORAGE_URL: where uploaded images go, as one URL (read by settings; no
Django imports here).

- empty (default): the local media folder (MEDIA_ROOT), served under /media/
  with year-long cache headers (components/views.py);
- `s3://bucket[/prefix]?endpoint_url=https://...&region_name=...&custom_domain=cdn.example.com`:
  an S3-compatible bucket through django-storages (AWS S3, Aliyun OSS, MinIO...);
  credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY as boto3 reads them.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

S3_OPTIONS = ("endpoint_url", "region_name", "custom_domain", "signature_version", "addressing_style")


def media_storage(url: str) -> dict:
    """The STORAGES["default"] entry for a MEDIA_STORAGE_URL."""
    if not url:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("MEDIA_STORAGE_URL must be empty or s3://bucket[/prefix]?endpoint_url=...")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - set(S3_OPTIONS)
    if unknown:
        raise ValueError(f"MEDIA_STORAGE_URL: unknown option(s) {', '.join(sorted(unknown))}")
    options = {
        "bucket_name": parts.netloc,
        "location": parts.path.strip("/"),
        "file_overwrite": False,
        "querystring_auth": False,  # public images: plain, cacheable URLs
        "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
        **query,
    }
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
