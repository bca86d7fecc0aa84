"""The helpdesk's business rules that write: every state change of conversations,
tickets and messages, and the Graph calls they lead to. Import the module you need
(`from agents.services import tickets`); this package re-exports nothing.

- `state`     the two funnels (`control_transition`, `ticket_change`) and what every
              service shares (outcomes, timeline lines, app labels, the agent's ticket
              lock);
- `control`   thread control: handover webhooks, asking for the thread, ownership drift;
- `inbound`   applying Messenger events: messages, echoes, receipts, triggers
              (`messenger_event_handle` is settings.MESSENGER_EVENT_HANDLER);
- `outbound`  replies, retries, the Send API call, typing indicators;
- `tickets`   claim, transfer, close and the hand-back to the bot, request control;
- `contacts`  contacts, conversations, profiles;
- `reconcile` beat's repairs: the 24-hour lapse, re-driving lost tasks;
- `csat`      the rating question before the hand-back, its answer, its timeout.

Read-only rules (why a reply is locked, windows, send policy) are in `agents.rules`;
reads for the API are in `agents.selectors`. Each service locks its rows through
`agents.locks`, checks, writes, and leaves the process (Celery, Channels) only after
commit.
"""

# Services enqueue tasks (`tasks.message_send`) and tasks call services: the modules
# import each other. Loading `agents.tasks` first, whatever is imported first, makes
# the order one and the same: tasks, then every service module in dependency order.
from agents import tasks  # noqa: F401
