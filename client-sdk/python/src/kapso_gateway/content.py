"""What ``send_message`` sends: one small type per kind of WhatsApp message.

:class:`Text`, :class:`Template`, :class:`Media`, :class:`Interactive`,
:class:`Reaction`, :class:`Location` and :class:`Contacts` each build their
``kapso.gateway.v1`` content message. The core checks every limit (button counts,
lengths, the 24-hour window) and answers ``INVALID_ARGUMENT`` naming the rule; these
types only shape the request.

# Examples

>>> Template("order_shipped", "es", body=["Ana", "1042"], url_suffixes={0: "ORD-1042"})  # doctest: +SKIP
>>> Media.document("https://cdn.example.com/inv-1042.pdf", filename="invoice-1042.pdf")  # doctest: +SKIP
>>> Interactive.buttons("¿Confirmas tu hora?", [("yes", "Sí"), ("no", "No")])  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Iterable, Mapping, Optional, Sequence, Tuple, Union

from google.protobuf.message import Message as ProtoMessage

from kapso.gateway.v1 import content_pb2 as pb
from kapso_gateway.enums import MediaKind


@dataclass(frozen=True)
class Text:
    """A text of 1 to 4096 characters; ``preview_url`` renders its first link."""

    case: ClassVar[str] = "text"
    body: str
    preview_url: bool = False

    def to_proto(self) -> pb.TextContent:
        return pb.TextContent(body=self.body, preview_url=self.preview_url)


@dataclass(frozen=True)
class Media:
    """An image, video, audio, document or sticker: by public HTTPS ``link`` or uploaded ``id``.

    Use the constructors: ``Media.image(link)``, ``Media.document(link, filename=...)``,
    ``Media.audio(id=media_id, voice=True)``.
    """

    case: ClassVar[str] = "media"
    kind: MediaKind
    link: str = ""
    id: str = ""
    caption: str = ""
    filename: str = ""
    voice: bool = False

    @classmethod
    def image(cls, link: str = "", *, id: str = "", caption: str = "") -> "Media":
        return cls(MediaKind.IMAGE, link, id, caption=caption)

    @classmethod
    def video(cls, link: str = "", *, id: str = "", caption: str = "") -> "Media":
        return cls(MediaKind.VIDEO, link, id, caption=caption)

    @classmethod
    def audio(cls, link: str = "", *, id: str = "", voice: bool = False) -> "Media":
        """``voice`` sends it as a voice note (OGG/OPUS)."""
        return cls(MediaKind.AUDIO, link, id, voice=voice)

    @classmethod
    def document(
        cls, link: str = "", *, id: str = "", caption: str = "", filename: str = ""
    ) -> "Media":
        return cls(MediaKind.DOCUMENT, link, id, caption=caption, filename=filename)

    @classmethod
    def sticker(cls, link: str = "", *, id: str = "") -> "Media":
        return cls(MediaKind.STICKER, link, id)

    def to_proto(self) -> pb.MediaContent:
        return pb.MediaContent(
            kind=int(self.kind),
            link=self.link,
            id=self.id,
            caption=self.caption,
            filename=self.filename,
            voice=self.voice,
        )


@dataclass(frozen=True)
class Currency:
    """A template currency value: ``amount_1000`` is the amount times 1000, ``code`` ISO 4217."""

    fallback_value: str
    code: str
    amount_1000: int


@dataclass(frozen=True)
class DateTime:
    """A template date-time value, shown as ``fallback_value``."""

    fallback_value: str


TemplateValue = Union[str, Currency, DateTime]


def _parameter(value: TemplateValue, name: str = "") -> pb.TemplateParameter:
    if isinstance(value, Currency):
        currency = pb.TemplateCurrency(
            fallback_value=value.fallback_value, code=value.code, amount_1000=value.amount_1000
        )
        return pb.TemplateParameter(parameter_name=name, currency=currency)
    if isinstance(value, DateTime):
        date_time = pb.TemplateDateTime(fallback_value=value.fallback_value)
        return pb.TemplateParameter(parameter_name=name, date_time=date_time)
    return pb.TemplateParameter(parameter_name=name, text=value)


def _button(kind: int, index: int, parameter: pb.TemplateParameter) -> pb.TemplateComponent:
    return pb.TemplateComponent(
        type=pb.TEMPLATE_COMPONENT_TYPE_BUTTON, button_type=kind, index=index, parameters=[parameter]
    )


@dataclass(frozen=True)
class Template:
    """An approved template, the only kind sent outside the 24-hour window.

    ``body`` holds the body's variables: a sequence for positional ``{{1}}``, ``{{2}}``
    or a mapping for named ones, each a string, :class:`Currency` or :class:`DateTime`.
    ``header`` is a text or a :class:`Media` (image, video, document).
    ``quick_replies`` maps a quick-reply button's index to the payload returned when it
    is tapped; ``url_suffixes`` a URL button's index to the text replacing its ``{{1}}``.
    ``components`` adds any other component in Meta's shape.
    """

    case: ClassVar[str] = "template"
    name: str
    language: str
    body: Union[Sequence[TemplateValue], Mapping[str, TemplateValue]] = ()
    header: Union[None, str, Media] = None
    quick_replies: Mapping[int, str] = field(default_factory=dict)
    url_suffixes: Mapping[int, str] = field(default_factory=dict)
    components: Sequence[pb.TemplateComponent] = ()

    def to_proto(self) -> pb.TemplateContent:
        components = []
        if isinstance(self.header, Media):
            header = pb.TemplateParameter(media=self.header.to_proto())
        elif self.header is not None:
            header = _parameter(self.header)
        if self.header is not None:
            components.append(
                pb.TemplateComponent(type=pb.TEMPLATE_COMPONENT_TYPE_HEADER, parameters=[header])
            )
        if isinstance(self.body, Mapping):
            body = [_parameter(value, name) for name, value in self.body.items()]
        else:
            body = [_parameter(value) for value in self.body]
        if body:
            components.append(
                pb.TemplateComponent(type=pb.TEMPLATE_COMPONENT_TYPE_BODY, parameters=body)
            )
        for index, payload in sorted(self.quick_replies.items()):
            parameter = pb.TemplateParameter(payload=payload)
            components.append(_button(pb.TEMPLATE_BUTTON_TYPE_QUICK_REPLY, index, parameter))
        for index, suffix in sorted(self.url_suffixes.items()):
            parameter = pb.TemplateParameter(text=suffix)
            components.append(_button(pb.TEMPLATE_BUTTON_TYPE_URL, index, parameter))
        components.extend(self.components)
        return pb.TemplateContent(name=self.name, language=self.language, components=components)


@dataclass(frozen=True)
class Button:
    """A reply button: ``id`` comes back in the reply, ``title`` (at most 20 characters) is shown."""

    id: str
    title: str


@dataclass(frozen=True)
class Row:
    """A row of a list: ``id`` comes back in the reply."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Section:
    """A titled group of rows in a list (the title is required with more than one section)."""

    title: str
    rows: Sequence[Row]


@dataclass(frozen=True)
class Interactive:
    """Reply buttons, a list or a call-to-action URL; build with the class methods.

    ``header`` is a text or (not for lists) a :class:`Media`.
    """

    case: ClassVar[str] = "interactive"
    body: str
    action: Union[pb.ReplyButtons, pb.ListAction, pb.CallToActionUrl]
    header: Union[None, str, Media] = None
    footer: str = ""

    @classmethod
    def buttons(
        cls,
        body: str,
        buttons: Iterable[Union[Button, Tuple[str, str]]],
        *,
        header: Union[None, str, Media] = None,
        footer: str = "",
    ) -> "Interactive":
        """Up to 3 reply buttons, each a :class:`Button` or an ``(id, title)`` pair."""
        pairs = [(b.id, b.title) if isinstance(b, Button) else b for b in buttons]
        reply_buttons = [pb.ReplyButton(id=id, title=title) for id, title in pairs]
        return cls(body, pb.ReplyButtons(buttons=reply_buttons), header, footer)

    @classmethod
    def list(
        cls,
        body: str,
        button: str,
        sections: Iterable[Section],
        *,
        header: Optional[str] = None,
        footer: str = "",
    ) -> "Interactive":
        """A list opened by the button labelled ``button``."""
        action = pb.ListAction(
            button=button,
            sections=[
                pb.ListSection(
                    title=s.title,
                    rows=[pb.ListRow(id=r.id, title=r.title, description=r.description) for r in s.rows],
                )
                for s in sections
            ],
        )
        return cls(body, action, header, footer)

    @classmethod
    def cta_url(
        cls,
        body: str,
        display_text: str,
        url: str,
        *,
        header: Union[None, str, Media] = None,
        footer: str = "",
    ) -> "Interactive":
        """A button that opens ``url``."""
        return cls(body, pb.CallToActionUrl(display_text=display_text, url=url), header, footer)

    def to_proto(self) -> pb.InteractiveContent:
        content = pb.InteractiveContent(body=self.body, footer=self.footer)
        if isinstance(self.header, Media):
            content.header.media.CopyFrom(self.header.to_proto())
        elif self.header is not None:
            content.header.text = self.header
        if isinstance(self.action, pb.ReplyButtons):
            content.buttons.CopyFrom(self.action)
        elif isinstance(self.action, pb.ListAction):
            content.list.CopyFrom(self.action)
        else:
            content.cta_url.CopyFrom(self.action)
        return content


@dataclass(frozen=True)
class Reaction:
    """A reaction to the message ``message_id``; an empty ``emoji`` removes it."""

    case: ClassVar[str] = "reaction"
    message_id: str
    emoji: str

    def to_proto(self) -> pb.ReactionContent:
        return pb.ReactionContent(message_id=self.message_id, emoji=self.emoji)


@dataclass(frozen=True)
class Location:
    """A location pin."""

    case: ClassVar[str] = "location"
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""

    def to_proto(self) -> pb.LocationContent:
        return pb.LocationContent(
            latitude=self.latitude, longitude=self.longitude, name=self.name, address=self.address
        )


@dataclass(frozen=True)
class Contact:
    """A contact card: the name shown, phone numbers, emails and company.

    For addresses, URLs and the rest of Meta's card, pass a ``content_pb2.ContactCard``
    to :class:`Contacts` instead.
    """

    name: str
    phones: Sequence[str] = ()
    emails: Sequence[str] = ()
    company: str = ""
    birthday: str = ""

    def to_proto(self) -> pb.ContactCard:
        card = pb.ContactCard(
            name=pb.ContactName(formatted_name=self.name),
            phones=[pb.ContactPhone(phone=p) for p in self.phones],
            emails=[pb.ContactEmail(email=e) for e in self.emails],
            birthday=self.birthday,
        )
        if self.company:
            card.org.company = self.company
        return card


@dataclass(frozen=True, init=False)
class Contacts:
    """One or more contact cards, each a :class:`Contact` or a ``content_pb2.ContactCard``."""

    case: ClassVar[str] = "contacts"
    cards: Tuple[Union[Contact, pb.ContactCard], ...]

    def __init__(self, *cards: Union[Contact, pb.ContactCard]):
        object.__setattr__(self, "cards", cards)

    def to_proto(self) -> pb.ContactsContent:
        return pb.ContactsContent(
            contacts=[c.to_proto() if isinstance(c, Contact) else c for c in self.cards]
        )


#: Anything ``send_message`` accepts as content.
Content = Union[str, Text, Template, Media, Interactive, Reaction, Location, Contacts, ProtoMessage]

# The request's oneof case for each generated content message given as is.
_CASE_OF_PROTO = {
    pb.TextContent: "text",
    pb.TemplateContent: "template",
    pb.MediaContent: "media",
    pb.InteractiveContent: "interactive",
    pb.ReactionContent: "reaction",
    pb.LocationContent: "location",
    pb.ContactsContent: "contacts",
}


def to_request_fields(content: Content) -> dict:
    """``{case: message}`` for ``SendMessageRequest``: a ``str`` is a text, a generated
    content message goes as is. Anything else raises :class:`TypeError` before any call."""
    if isinstance(content, str):
        content = Text(content)
    case = _CASE_OF_PROTO.get(type(content))
    if case is not None:
        return {case: content}
    to_proto = getattr(content, "to_proto", None)
    case = getattr(content, "case", None)
    if to_proto is None or case not in _CASE_OF_PROTO.values():
        raise TypeError(
            f"cannot send a {type(content).__name__}: give a str, Text, Template, Media, "
            "Interactive, Reaction, Location or Contacts"
        )
    return {case: to_proto()}
