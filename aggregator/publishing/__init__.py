"""Publishing: the story read model, our feeds (Atom, RSS, JSON Feed), WebSub
pings and the JSON Lines export."""
