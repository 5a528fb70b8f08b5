"""What other apps may react to without the files app knowing them."""

from django.dispatch import Signal

# Sent after a change propagated: `node_ids` are the folders whose etag just changed (the changed
# node's ancestors). Sharing listens so a sharee's root changes too, as a sync client expects.
tree_changed = Signal()
