"""``zstack-cli``: a command-line client of the MN's REST API.

Every API is called by its ZStack name with ``key=value`` arguments::

    zstack-cli LogInByAccount accountName=admin password=password
    zstack-cli CreateZone name=z1 description="first zone"
    zstack-cli QueryZone name~=z% state!=Disabled fields=uuid,name sort=+name
    zstack-cli ChangeZoneState uuid=<uuid> stateEvent=disable
    zstack-cli DeleteZone uuid=<uuid>
    zstack-cli LogOut

The client knows no API itself: it reads the MN's OpenAPI document
(``/zstack/v1/openapi.json``, its ``x-zstack`` extension of every operation)
and keeps a copy under ``~/.zstack/cli/``, next to the session of each
server it logged in to.

| module | what it does |
| --- | --- |
| ``catalog.py`` | the APIs of one MN, from its OpenAPI document, cached per server |
| ``args.py`` | ``key=value`` arguments to an HTTP request (typed parameters, query conditions) |
| ``client.py`` | HTTP calls, following an API job to its end |
| ``home.py`` | ``~/.zstack/cli``: sessions and cached catalogues |
| ``progress.py`` | the spinner shown while an API job runs |
| ``output.py`` | tables and JSON |
| ``main.py`` | the click command; ``Cli`` runs one command and reports its failure |
| ``shell.py`` | commands from stdin: a script, or an interactive shell with completion |
"""
