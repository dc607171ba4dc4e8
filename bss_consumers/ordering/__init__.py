"""Ordering: product orders (TMF622), provisioning requests to OSS, completion and fallout."""
