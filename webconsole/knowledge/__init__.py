"""The console's pages of the knowledge base (mounted at ``knowledge/``).

They belong to the console, not to the ``knowledge`` app: they use the console's access rules
(``webconsole.calls.access``) and its extensions, and the knowledge app never imports the console
(pyproject's import contracts). Their templates are ``webconsole/templates/knowledge/``; the URL
namespace is still ``knowledge``.
"""
