import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from common import web as common_web
from notifier.adapters.db import Reminders, SentMail
from notifier.adapters.smtp import SmtpMailer
from notifier.app_keys import NOTIFIER
from notifier.handlers.messages import subscriptions
from notifier.service import Notifier
from notifier.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = common_web.service_app(settings)

    async def wire(app: web.Application) -> AsyncIterator[None]:
        mailer = SmtpMailer(
            settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds, settings.smtp_data_timeout_seconds
        )
        sent_mail = SentMail(app[common_web.PG_POOL], uuid.uuid4().hex, timedelta(seconds=settings.claim_lease_seconds))
        app[NOTIFIER] = Notifier(
            sent_mail,
            Reminders(app[common_web.PG_POOL]),
            mailer,
            settings.letterhead,
            settings.public_url,
            settings.claim_link_secret.get_secret_value(),
        )
        yield
        await mailer.close()

    app.cleanup_ctx.extend(
        [
            common_web.pg_pool(settings.database_url),
            common_web.broker(settings.rabbitmq_url, settings.service_name),
            wire,
            common_web.consumer(settings, lambda app: subscriptions(app[NOTIFIER]), settings.retry_delays),
            common_web.background("reminders", lambda app: app[NOTIFIER].remind_every(settings.reminder_check_seconds)),
        ]
    )
    return app
