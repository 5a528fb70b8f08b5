"""Small helpers to read WebDAV multistatus answers in tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote

import httpx

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"

ALL_PROPS = """<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">
  <d:prop>
    <d:resourcetype/><d:getlastmodified/><d:getcontentlength/><d:getcontenttype/><d:getetag/>
    <d:quota-used-bytes/><d:quota-available-bytes/>
    <oc:fileid/><oc:id/><oc:permissions/><oc:size/><oc:checksums/><nc:is-encrypted/>
  </d:prop>
</d:propfind>"""


def propfind(client: httpx.Client, path: str, *, depth: str = "0",
             body: str = ALL_PROPS) -> dict[str, dict[str, ET.Element]]:
    """PROPFIND and return {decoded href: {clark name: element}} of the 200 propstats."""
    response = client.request("PROPFIND", path, headers={"Depth": depth}, content=body)
    assert response.status_code == 207, (response.status_code, response.text)
    return parse_multistatus(response.text)


def parse_multistatus(text: str) -> dict[str, dict[str, ET.Element]]:
    result: dict[str, dict[str, ET.Element]] = {}
    for resp in ET.fromstring(text).iter(DAV + "response"):
        href = unquote(resp.findtext(DAV + "href") or "")
        props: dict[str, ET.Element] = {}
        for propstat in resp.iter(DAV + "propstat"):
            if " 200 " not in (propstat.findtext(DAV + "status") or ""):
                continue
            prop_el = propstat.find(DAV + "prop")
            for prop in prop_el if prop_el is not None else ():
                props[prop.tag] = prop
        result[href] = props
    return result


def prop_text(props: dict[str, ET.Element], name: str) -> str:
    return props[name].text or ""
