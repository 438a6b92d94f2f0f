"""Signs in to the example server and connects sandbox accounts, so that the generated
requests meet real connections: prints the session cookie, then the accounts as JSON.

    python prepare.py http://127.0.0.1:PORT
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


opener = urllib.request.build_opener(NoRedirect)


def call(method, url, cookie=None, body=None):
    headers = {"Sec-Fetch-Site": "same-origin"}
    if cookie:
        headers["Cookie"] = cookie
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        response = opener.open(request, timeout=10)
    except urllib.error.HTTPError as answer:  # 3xx (not followed) and errors
        response = answer
    with response:
        return response.status, response.headers, response.read()


def main(base):
    status, headers, _ = call("POST", f"{base}/api/session", body={"userId": 1})
    assert status == 200, f"sign-in answered {status}"
    cookie = next(
        c.split(";", 1)[0]
        for c in headers.get_all("Set-Cookie") or []
        if c.startswith("integrations_session=")
    )
    api = f"{base}/api/integrations"
    status, _, body = call("GET", f"{api}/providers", cookie)
    assert status == 200, f"providers answered {status}"
    accounts = []
    for provider in json.loads(body)["providers"]:
        for user in ("alice", "bob"):
            status, _, body = call(
                "POST", f"{api}/connect/{provider['id']}", cookie, body={}
            )
            assert status == 200, f"connect {provider['id']} answered {status}"
            auth_url = json.loads(body)["authUrl"]
            consent = auth_url + ("&" if "?" in auth_url else "?") + urllib.parse.urlencode(
                {"sandbox_auto": "allow", "sandbox_user": user}
            )
            status, headers, _ = call("GET", consent)
            assert status in (302, 303), f"the sandbox consent answered {status}"
            callback = headers["Location"].split("#", 1)[0]
            status, headers, _ = call("GET", callback, cookie)
            assert status == 303, f"callback answered {status}"
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)
            assert "account" in query, f"not connected: {headers['Location']}"
            accounts.append({"provider": provider["id"], "account_id": query["account"][0]})
    print(cookie)
    print(json.dumps(accounts))


if __name__ == "__main__":
    main(sys.argv[1])
