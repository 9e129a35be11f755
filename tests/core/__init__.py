"""The core (index/): answers, retrieval, conversations and the rider question set, with no Discord."""
