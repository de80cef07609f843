"""Resources: the files users share (store), their download links (downloads) and what a
guest sees of one before typing the code (guest)."""
