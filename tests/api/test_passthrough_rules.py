"""Pure rules of the Vertex-native routes: the list filter Vertex gets for each caller."""

from shared.api.passthrough import _scope_filter
from shared.core.keys import Caller, master_caller


def test_the_list_filter_vertex_gets_is_the_callers_scope():
    def caller(**fields):
        return Caller(key_id="k" * 16, alias="someone", **fields)

    assert _scope_filter(master_caller()) is None
    assert _scope_filter(caller(team="Data Science")) == 'labels.vbg-key="kkkkkkkkkkkkkkkk"'
    admin = caller(team="Data Science", team_admin=True)
    assert _scope_filter(admin) == 'labels.vbg-team="data-science"'
    assert _scope_filter(caller(team_admin=True)) == 'labels.vbg-key="kkkkkkkkkkkkkkkk"'
