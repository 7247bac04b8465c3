"""Topic names of the bus; versioned, each with its dead-letter topic."""

FLOWS = "twinwatch.flows.v1"
IMAGES = "twinwatch.images.v1"
EVENTS = "twinwatch.events.v1"
MODELS = "twinwatch.models.v1"
DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter(topic: str) -> str:
    """The dead-letter topic of a topic: where records that cannot be handled go, with the reason."""
    return topic + DEAD_LETTER_SUFFIX
