//! The console's languages: English and Spanish (the seed users'). Every
//! string is a variant of [`M`] with both texts, so a missing translation
//! does not compile. Application errors carry English details: their codes
//! map to translated messages here ([`error_message`]), and validation
//! reasons to translated sentences ([`field_error`]); the English detail is
//! shown beneath, marked `lang="en"`.

use hookline_domain::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    Es,
}

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    /// The language's own name (for the switch).
    pub fn name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::Es => "Español",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "es" => Some(Self::Es),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header (by quality,
    /// then order).
    pub fn negotiate(header: &str) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(locale) = Self::from_code(primary) else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }
}

macro_rules! messages {
    ($($key:ident => $en:expr, $es:expr;)*) => {
        /// Every text of the console.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum M { $($key),* }

        impl M {
            pub const ALL: &'static [M] = &[$(M::$key),*];

            pub fn text(self, locale: Locale) -> &'static str {
                match (self, locale) {
                    $((M::$key, Locale::En) => $en, (M::$key, Locale::Es) => $es,)*
                }
            }
        }
    };
}

messages! {
    Actions => "Actions", "Acciones";
    ActiveKeys => "Active keys", "Claves activas";
    AdminToken => "Admin token", "Token de administración";
    AdminTokenHint => "The value of HOOKLINE_ADMIN_TOKEN on the server.", "El valor de HOOKLINE_ADMIN_TOKEN en el servidor.";
    Aggregate => "Aggregate", "Agregado";
    AllGroups => "All groups", "Todos los grupos";
    AnyStatus => "Any status", "Cualquier estado";
    ApiKey => "API key", "Clave de API";
    ApiKeyHint => "Your tenant's key (hlk_…). It is never stored in the browser.", "La clave de su cuenta (hlk_…). Nunca se guarda en el navegador.";
    ApiKeys => "API keys", "Claves de API";
    ApplyFilters => "Apply filters", "Aplicar filtros";
    Attempt => "Attempt", "Intento";
    Attempts => "Attempts", "Intentos";
    AuditBroken => "The audit chain is broken:", "La cadena de auditoría está rota:";
    AuditChain => "Audit chain", "Cadena de auditoría";
    AuditExplain => "Every event of your account is linked to the one before it by a SHA-256 hash. Verifying recomputes every link.", "Cada evento de su cuenta está enlazado con el anterior mediante un hash SHA-256. Verificar recalcula cada enlace.";
    AuditIntact => "The audit chain is intact: {0} events in {1} aggregates checked.", "La cadena de auditoría está intacta: {0} eventos en {1} agregados verificados.";
    BackToConsole => "Back to the console", "Volver a la consola";
    BackToSubscription => "Back to the subscription", "Volver a la suscripción";
    BackToTenants => "Back to all tenants", "Volver a todas las cuentas";
    Cancel => "Cancel", "Cancelar";
    ChartSummary => "{0} deliveries in the last 24 hours: {1} delivered, {2} failed.", "{0} entregas en las últimas 24 horas: {1} entregadas, {2} fallidas.";
    ClearHeaders => "Remove all custom headers", "Quitar todas las cabeceras personalizadas";
    ConfirmDelete => "Yes, delete it", "Sí, eliminarla";
    Continue => "Continue", "Continuar";
    ContinueToSubscription => "Continue to the subscription", "Ir a la suscripción";
    Copied => "Copied to the clipboard.", "Copiado al portapapeles.";
    Copy => "Copy", "Copiar";
    CreateFirst => "Create your first subscription", "Crear su primera suscripción";
    CreatePortalLink => "Create portal link", "Crear enlace al portal";
    CreateSubscription => "Create subscription", "Crear suscripción";
    CreateTenant => "Create tenant", "Crear cuenta";
    Created => "Created", "Creado";
    CustomEvents => "Other event names", "Otros nombres de evento";
    CustomEventsHint => "Separated by commas or spaces: exact names (order.shipped) or wildcards (order.*).", "Separados por comas o espacios: nombres exactos (order.shipped) o comodines (order.*).";
    CustomHeaders => "Custom headers", "Cabeceras personalizadas";
    Dashboard => "Dashboard", "Panel";
    DashboardLead => "Deliveries created since", "Entregas creadas desde";
    Delete => "Delete", "Eliminar";
    DeleteExplain => "It stops receiving deliveries at once. Its history stays in the log.", "Deja de recibir entregas de inmediato. Su historial permanece en el registro.";
    DeleteQuestion => "Do you want to delete the subscription that sends to this URL?", "¿Desea eliminar la suscripción que envía a esta URL?";
    DeleteTitle => "Delete subscription", "Eliminar suscripción";
    Deliveries => "Deliveries", "Entregas";
    DeliveriesLastDay => "Deliveries in the last 24 h", "Entregas en las últimas 24 h";
    DeliveriesPerMinute => "Deliveries per minute, last 24 hours", "Entregas por minuto, últimas 24 horas";
    Delivery => "Delivery", "Entrega";
    DeliveryLog => "Delivery log", "Registro de entregas";
    DeliveryLogCaption => "Newest first; updates while deliveries happen.", "Las más recientes primero; se actualiza mientras ocurren las entregas.";
    Deprecated => "deprecated", "obsoleto";
    Description => "Description", "Descripción";
    Details => "Details", "Detalles";
    Disable => "Disable", "Desactivar";
    Documentation => "Documentation", "Documentación";
    DoneCreated => "Created.", "Creado.";
    DoneDeleted => "The subscription was deleted.", "La suscripción fue eliminada.";
    DoneDisabled => "The subscription is disabled: it receives nothing until enabled.", "La suscripción está desactivada: no recibe nada hasta que se active.";
    DoneEnabled => "The subscription is enabled.", "La suscripción está activada.";
    DoneRecovered => "Failed deliveries since that time are queued again.", "Las entregas fallidas desde esa hora se pusieron de nuevo en cola.";
    DoneRetried => "Another attempt is queued; it appears below as a new attempt.", "Se puso en cola otro intento; aparecerá abajo como un intento nuevo.";
    DoneRevoked => "Revoked.", "Revocado.";
    DoneTestSent => "A test event was sent; its delivery appears in the log below.", "Se envió un evento de prueba; su entrega aparece en el registro de abajo.";
    DoneUpdated => "Changes saved.", "Cambios guardados.";
    DueNow => "Due now", "Pendientes ahora";
    Duration => "Duration", "Duración";
    Edit => "Edit", "Editar";
    EditSubscription => "Edit subscription", "Editar suscripción";
    EmptyExplain => "A subscription tells Hookline where to send which events: an HTTPS URL of yours and the event names it wants, such as invoice.created.", "Una suscripción indica a Hookline adónde enviar qué eventos: una URL HTTPS suya y los nombres de evento que quiere, como invoice.created.";
    EmptyNext => "Create one, then use “Send test” to check that your endpoint receives signed requests.", "Cree una y luego use «Enviar prueba» para comprobar que su servidor recibe peticiones firmadas.";
    EmptyTitle => "No subscriptions yet", "Aún no hay suscripciones";
    Enable => "Enable", "Activar";
    Error => "Error", "Error";
    ErrorTitle => "Something went wrong", "Algo salió mal";
    Event => "Event", "Evento";
    EventTypes => "Event types", "Tipos de evento";
    EventTypesLead => "The events your systems publish, by group, with their schema and an example.", "Los eventos que publican sus sistemas, por grupo, con su esquema y un ejemplo.";
    Events => "Events", "Eventos";
    EventsHint => "Pick single events, a whole group, or a group's wildcard (which also covers types added later).", "Elija eventos sueltos, un grupo entero o el comodín de un grupo (que cubre también tipos añadidos después).";
    EventsInLog => "Events in the log", "Eventos en el registro";
    ExamplePayload => "Example payload", "Ejemplo de contenido";
    Expires => "Expires", "Caduca";
    Failed => "Failed", "Fallidas";
    FailingSubscriptions => "Failing subscriptions", "Suscripciones con fallos";
    FilterEvent => "Event", "Evento";
    FilterStatus => "Status", "Estado";
    FixErrors => "Please correct the fields marked below.", "Corrija los campos marcados abajo.";
    From => "From (UTC)", "Desde (UTC)";
    Group => "Group", "Grupo";
    HeaderTwice => "The header “{0}” is given twice: keep one line for it.", "La cabecera «{0}» aparece dos veces: deje una sola línea.";
    HeaderLineInvalid => "“{0}” is not a header line: write Name: value.", "«{0}» no es una línea de cabecera: escriba Nombre: valor.";
    HeadersHint => "One per line, as Name: value. Values are stored encrypted and shown masked.", "Una por línea, como Nombre: valor. Los valores se guardan cifrados y se muestran ocultos.";
    HeadersKept => "Leave empty to keep the current ones:", "Déjelo vacío para conservar las actuales:";
    HelpDeliveries => "Each published event becomes one delivery per matching subscription. Failed attempts are retried with backoff; from a delivery's page you can retry it at once, and from a subscription's page recover every failure since a time.", "Cada evento publicado se convierte en una entrega por suscripción que coincida. Los intentos fallidos se reintentan con espera creciente; desde la página de una entrega puede reintentarla de inmediato, y desde la de una suscripción recuperar todos los fallos desde una hora.";
    HelpDeliveriesTitle => "Deliveries and retries", "Entregas y reintentos";
    HelpIntro => "The console shows and changes the same things as Hookline's API: your subscriptions, their deliveries and their history.", "La consola muestra y cambia lo mismo que la API de Hookline: sus suscripciones, sus entregas y su historial.";
    HelpMore => "The full documentation is in the docs/ folder of Hookline's repository:", "La documentación completa está en la carpeta docs/ del repositorio de Hookline:";
    HelpMoreTitle => "More", "Más";
    HelpPortal => "A portal link opens this console for one of your own customers, for a limited time, optionally read-only and limited to some subscriptions. You can revoke it at any time; every use is recorded.", "Un enlace al portal abre esta consola para uno de sus propios clientes, por un tiempo limitado, opcionalmente en solo lectura y limitado a algunas suscripciones. Puede revocarlo en cualquier momento; cada uso queda registrado.";
    HelpPortalTitle => "Portal links", "Enlaces al portal";
    HelpSubscriptions => "Create a subscription with your endpoint's HTTPS URL and the events it wants. Its secret is shown once: keep it to verify the signatures.", "Cree una suscripción con la URL HTTPS de su servidor y los eventos que quiere. Su secreto se muestra una sola vez: guárdelo para verificar las firmas.";
    HelpSubscriptionsTitle => "Subscriptions", "Suscripciones";
    HelpTitle => "How the console works", "Cómo funciona la consola";
    HelpVerify => "Every request carries a signature made with the subscription's secret (Standard Webhooks by default). Check it before trusting the body.", "Cada petición lleva una firma hecha con el secreto de la suscripción (Standard Webhooks por defecto). Compruébela antes de confiar en el contenido.";
    HelpVerifyTitle => "Verifying signatures", "Verificar las firmas";
    History => "History", "Historial";
    HistoryLead => "Every change, from the event log: who made it, when, and under which request id. Secrets are never shown.", "Cada cambio, desde el registro de eventos: quién lo hizo, cuándo y con qué id de petición. Los secretos nunca se muestran.";
    Hour1 => "1 hour", "1 hora";
    Hours24 => "24 hours", "24 horas";
    Hours8 => "8 hours", "8 horas";
    IssueKey => "Issue a new key", "Emitir una clave nueva";
    Key => "Key", "Clave";
    KeyOnce => "This is the only time the key is shown. Copy it now.", "Esta es la única vez que se muestra la clave. Cópiela ahora.";
    Language => "Language", "Idioma";
    LastDelivery => "Last delivery", "Última entrega";
    LastError => "Last response or error", "Última respuesta o error";
    LimitHint => "Leave all unchecked for every subscription. A limited link cannot create subscriptions.", "Deje todo sin marcar para todas las suscripciones. Un enlace limitado no puede crear suscripciones.";
    LimitToSubscriptions => "Limit to these subscriptions", "Limitar a estas suscripciones";
    AttemptFailedRetrying => "failed, to be retried", "falló, se reintentará";
    PortalSessionEnded => "The portal link this page was opened with has ended: it expired or was revoked. Ask whoever gave you the link for a new one.", "El enlace de portal con el que se abrió esta página terminó: caducó o fue revocado. Pida uno nuevo a quien le dio el enlace.";
    SessionEnded => "Your session has ended: it was signed out, unused for a while or too old, the server restarted, or what it was signed in with no longer works. Sign in again to go on where you were.", "Su sesión terminó: se cerró, estuvo sin uso un tiempo o era demasiado antigua, el servidor se reinició, o aquello con lo que se inició ya no sirve. Inicie sesión de nuevo para seguir donde estaba.";
    ConfirmRevokeKey => "Revoke this API key? Whatever uses it stops working at once, and portal links made with it end.", "¿Revocar esta clave de API? Lo que la use deja de funcionar enseguida, y los enlaces de portal creados con ella terminan.";
    ConfirmRevokeLink => "Revoke this portal link? It stops opening, and whoever uses it now is signed out.", "¿Revocar este enlace de portal? Deja de abrirse, y quien lo esté usando sale de la sesión.";
    LiveOffline => "The server cannot be reached: what is shown here may be out of date. The page keeps trying.", "No se puede contactar con el servidor: lo que se muestra aquí puede estar desactualizado. La página sigue intentándolo.";
    LiveHint => "This log refreshes by itself every few seconds.", "Este registro se actualiza solo cada pocos segundos.";
    MainNavigation => "Main", "Principal";
    Minutes15 => "15 minutes", "15 minutos";
    Name => "Name", "Nombre";
    NewSubscription => "New subscription", "Nueva suscripción";
    NextAttempt => "Next attempt", "Próximo intento";
    NextPage => "Next page", "Página siguiente";
    FirstPage => "First page", "Primera página";
    No => "No", "No";
    NoAttemptsYet => "No attempt yet: the delivery is queued.", "Aún no hay intentos: la entrega está en cola.";
    NoAttemptsInTrace => "No delivery was attempted for this request.", "No se intentó ninguna entrega para esta solicitud.";
    NoAttemptsInTraceScoped => "No delivery to the subscriptions this link shows was attempted for this request.", "No se intentó ninguna entrega a las suscripciones que muestra este enlace para esta solicitud.";
    NoDeliveries => "No deliveries match.", "Ninguna entrega coincide.";
    NoDeliveriesInTrace => "This request caused no delivery.", "Esta solicitud no causó ninguna entrega.";
    NoEventsInTraceScoped => "No event of this request concerns the subscriptions this link shows.", "Ningún evento de esta solicitud se refiere a las suscripciones que muestra este enlace.";
    NoDeliveriesInTraceScoped => "This request caused no delivery to the subscriptions this link shows.", "Esta solicitud no causó ninguna entrega a las suscripciones que muestra este enlace.";
    NoDeliveriesYet => "None yet", "Ninguna aún";
    NoErrors => "none", "ninguno";
    NoExample => "No example for this type.", "No hay ejemplo para este tipo.";
    NoFailing => "No delivery failed in the last 24 hours, for good or awaiting a retry.", "Ninguna entrega falló en las últimas 24 horas, del todo o a la espera de un reintento.";
    NoMatches => "No subscription matches these filters.", "Ninguna suscripción coincide con estos filtros.";
    NoSchema => "No schema: any JSON object is accepted.", "Sin esquema: se acepta cualquier objeto JSON.";
    NoTenants => "No tenants yet. Create the first one below.", "Aún no hay cuentas. Cree la primera abajo.";
    NotUsedYet => "Not used yet.", "Aún no se ha usado.";
    RecentLinks => "Links of the last 7 days", "Enlaces de los últimos 7 días";
    NoRecentLinks => "No portal link was made in the last 7 days (older ones have all expired).", "No se creó ningún enlace al portal en los últimos 7 días (los anteriores ya caducaron todos).";
    Expired => "expired", "caducado";
    LinkEnded => "ended", "terminado";
    LinkEndedHint => "What made it no longer works (its API key or operator key was revoked, or the admin token changed): it opens nothing.", "Aquello con lo que se creó ya no sirve (su clave de API o de operador fue revocada, o el token de administración cambió): no abre nada.";
    OldestDue => "oldest due since", "la más antigua pendiente desde";
    OpenConsole => "Open console", "Abrir consola";
    OperatorSignIn => "Operators", "Operadores";
    OperatorViewing => "Operator, viewing", "Operador, viendo";
    PayloadSent => "Payload sent", "Contenido enviado";
    PortalLead => "A portal link opens this console for one of your own customers: signed, valid for a limited time, revocable, and every use is recorded.", "Un enlace al portal abre esta consola para uno de sus propios clientes: firmado, válido por un tiempo limitado, revocable, y cada uso queda registrado.";
    PortalLink => "Portal link", "Enlace al portal";
    PortalLinkCreated => "Portal link created", "Enlace al portal creado";
    PortalLinkOnce => "This is the only time the link is shown. Send it to your customer now.", "Esta es la única vez que se muestra el enlace. Envíelo a su cliente ahora.";
    PortalLinks => "Portal links", "Enlaces al portal";
    PortalOf => "Portal of", "Portal de";
    Position => "Position", "Posición";
    QueueDepth => "Queued deliveries", "Entregas en cola";
    ReadOnly => "read-only", "solo lectura";
    ReadOnlyLink => "Read-only (the customer can look but not change anything)", "Solo lectura (el cliente puede mirar pero no cambiar nada)";
    ReadTheDocs => "Read how subscriptions and signatures work", "Lea cómo funcionan las suscripciones y las firmas";
    Recover => "Recover", "Recuperar";
    RecoverSince => "Failed deliveries created since (UTC)", "Entregas fallidas creadas desde (UTC)";
    RecoverTitle => "Recover failed deliveries", "Recuperar entregas fallidas";
    RequestId => "Request id", "Id de petición";
    RequestTrace => "Request", "Petición";
    ResponseExcerpt => "Response from the receiver", "Respuesta del receptor";
    RetryNow => "Retry now", "Reintentar ahora";
    Revoke => "Revoke", "Revocar";
    RevokeLink => "Revoke this link", "Revocar este enlace";
    Revoked => "revoked", "revocado";
    RotateSecret => "Rotate secret", "Rotar secreto";
    SaveChanges => "Save changes", "Guardar cambios";
    Schema => "Schema", "Esquema";
    Search => "Search", "Buscar";
    SearchPlaceholder => "URL or description", "URL o descripción";
    Secret => "Secret", "Secreto";
    SecretHint => "Optional, 8 to 500 characters. Leave empty to have one generated.", "Opcional, de 8 a 500 caracteres. Déjelo vacío para que se genere uno.";
    SecretOnce => "This is the only time the secret is shown. Copy it now to verify signatures.", "Esta es la única vez que se muestra el secreto. Cópielo ahora para verificar las firmas.";
    SecretRotated => "New secret", "Nuevo secreto";
    SelectAll => "Select all", "Seleccionar todo";
    SendTest => "Send test", "Enviar prueba";
    SignIn => "Sign in", "Iniciar sesión";
    SignInAsOperator => "Sign in as operator", "Iniciar sesión como operador";
    SignInFailed => "That key or token is not valid.", "Esa clave o token no es válido.";
    SignInLead => "Sign in with one of your tenant's API keys.", "Inicie sesión con una de las claves de API de su cuenta.";
    SignInTitle => "Sign in to Hookline", "Iniciar sesión en Hookline";
    SignOut => "Sign out", "Cerrar sesión";
    SignatureScheme => "Signature scheme", "Esquema de firma";
    SignedInAsOperator => "Signed in as operator", "Sesión de operador";
    SignedInAsTenant => "Signed in to", "Sesión en";
    SkipToContent => "Skip to content", "Saltar al contenido";
    Started => "Started", "Comenzó";
    Status => "Status", "Estado";
    StatusAbandoned => "abandoned", "abandonada";
    StatusActive => "active", "activa";
    StatusCircuitOpen => "circuit open", "circuito abierto";
    StatusSkipped => "skipped", "omitida";
    RateLimit => "Rate limit (attempts per second)", "Límite de envíos (intentos por segundo)";
    RateLimitHint => "Optional, 1–10000. Deliveries over the limit wait in the queue; none is dropped. Empty: no limit.", "Opcional, 1–10000. Las entregas por encima del límite esperan en la cola; ninguna se pierde. Vacío: sin límite.";
    RateLimitInvalid => "Enter a whole number from 1 to 10000, or leave it empty.", "Escriba un número entero de 1 a 10000, o déjelo vacío.";
    Circuit => "Circuit breaker", "Cortacircuitos";
    CircuitOpenSince => "open since", "abierto desde";
    ConsecutiveFailures => "consecutive failures", "fallos consecutivos";
    NextProbe => "next probe", "próxima prueba";
    Backlog => "Waiting deliveries", "Entregas en espera";
    StatusCode => "Status code", "Código de estado";
    StatusDeleted => "deleted", "eliminada";
    StatusDelivered => "delivered", "entregada";
    StatusDisabled => "disabled", "desactivada";
    StatusFailed => "failed", "fallida";
    StatusPending => "pending", "pendiente";
    SubscriptionCreated => "Subscription created", "Suscripción creada";
    Subscriptions => "Subscriptions", "Suscripciones";
    SubscriptionsCaption => "Your subscriptions, newest first.", "Sus suscripciones, las más recientes primero.";
    SuccessRate => "Success rate", "Tasa de éxito";
    SuccessRateChart => "Success rate per 10 minutes, last 24 hours", "Tasa de éxito cada 10 minutos, últimas 24 horas";
    TenantCreated => "Tenant created", "Cuenta creada";
    TenantName => "Name", "Nombre";
    Tenants => "Tenants", "Cuentas";
    Time => "Time", "Hora";
    TooManySignIns => "Too many failed sign-ins from this address. Wait a few minutes and try again.", "Demasiados intentos fallidos desde esta dirección. Espere unos minutos y vuelva a intentarlo.";
    TriggeredBy => "Triggered by", "Provocado por";
    Until => "Until (UTC)", "Hasta (UTC)";
    Updated => "Updated", "Actualizado";
    Url => "URL", "URL";
    UrlHint => "Where Hookline sends the events: https://, on a public address.", "Adónde envía Hookline los eventos: https://, en una dirección pública.";
    Uses => "Uses", "Usos";
    ValidFor => "Valid for", "Válido durante";
    VerifyNow => "Verify the audit chain now", "Verificar la cadena de auditoría ahora";
    ViewHistory => "View its history", "Ver su historial";
    ViewLink => "View the link and its uses", "Ver el enlace y sus usos";
    WhatChanged => "What changed", "Qué cambió";
    When => "When", "Cuándo";
    Who => "Who", "Quién";
    WildcardHint => "(every type of the group, also future ones)", "(todos los tipos del grupo, también los futuros)";
    Yes => "Yes", "Sí";
    // Errors, by the application's codes.
    ErrCsrf => "The form was refused: it did not come from this console (or the page is too old). Reload the page and try again.", "Se rechazó el formulario: no vino de esta consola (o la página es demasiado antigua). Recargue la página e inténtelo de nuevo.";
    ErrReadOnly => "This link is read-only: nothing can be changed with it.", "Este enlace es de solo lectura: no se puede cambiar nada con él.";
    ErrNotFound => "It was not found (or it belongs to another account).", "No se encontró (o pertenece a otra cuenta).";
    ErrPageNotFound => "There is no such page.", "No existe esa página.";
    ScopedDashboard => "This link covers some of the tenant's subscriptions: their failures are below; figures for the whole tenant are not shown.", "Este enlace cubre algunas de las suscripciones del cliente: sus fallos están abajo; las cifras de todo el cliente no se muestran.";
    ErrTenantChanged => "This page was shown for another tenant than the one this session works in now (it was changed in another tab or window): nothing was changed. Open the page again and retry.", "Esta página se mostró para otro cliente distinto del que esta sesión usa ahora (se cambió en otra pestaña o ventana): no se cambió nada. Abra la página de nuevo y vuelva a intentarlo.";
    ErrStaleForm => "This form is incomplete or out of date: nothing was saved. Open it again from the subscription's page.", "Este formulario está incompleto o desactualizado: no se guardó nada. Ábralo de nuevo desde la página de la suscripción.";
    ErrChangedMeanwhile => "This subscription was changed after you opened the form (in another tab, or through the API): nothing was saved, so that change is kept. Open the form again to see it, then make yours.", "Esta suscripción cambió después de abrir el formulario (en otra pestaña o por la API): no se guardó nada, así que ese cambio se conserva. Abra el formulario de nuevo para verlo y haga el suyo.";
    ErrChangedMeanwhileKept => "This subscription was changed after you opened the form (in another tab, or through the API): nothing was saved. What you entered is below; its current settings are on its page. Save again to replace them with yours.", "Esta suscripción cambió después de abrir el formulario (en otra pestaña o por la API): no se guardó nada. Lo que usted escribió está abajo; su configuración actual está en su página. Guarde de nuevo para reemplazarla por la suya.";
    ErrCreateNotAllowed => "A portal link cannot do this: it issues no portal links, and creates no subscriptions when it covers only some of them.", "Un enlace de portal no puede hacer esto: no emite enlaces de portal, ni crea suscripciones cuando solo cubre algunas.";
    ErrActionOnly => "This address is an action, taken with its button; it has no page of its own. Go back to the page the button was on.", "Esta dirección es una acción que se realiza con su botón; no tiene página propia. Vuelva a la página donde estaba el botón.";
    ErrDuplicate => "Another active subscription already sends these events to this URL.", "Otra suscripción activa ya envía estos eventos a esta URL.";
    ErrLimit => "This account has reached its maximum number of subscriptions.", "Esta cuenta alcanzó su número máximo de suscripciones.";
    ErrAlreadyDelivered => "This delivery was already delivered; there is nothing to retry.", "Esta entrega ya se entregó; no hay nada que reintentar.";
    ErrAttemptDue => "An attempt is already due or under way; retry after its outcome.", "Ya hay un intento pendiente o en curso; reintente después de su resultado.";
    ErrSubscriptionInactive => "The subscription is disabled: enable it first.", "La suscripción está desactivada: actívela primero.";
    ErrSubscriptionDeleted => "The subscription has been deleted.", "La suscripción fue eliminada.";
    ErrConflict => "It was changed by someone else at the same time. Reload and try again.", "Otra persona lo cambió al mismo tiempo. Recargue e inténtelo de nuevo.";
    ErrUnavailable => "The service cannot answer right now. Try again in a moment.", "El servicio no puede responder ahora. Inténtelo de nuevo en un momento.";
    ErrInternal => "An internal error occurred. Quote the request id when reporting it.", "Ocurrió un error interno. Indique el id de petición al informarlo.";
    PortalSwitchTitle => "Open this portal link?", "¿Abrir este enlace al portal?";
    PortalSwitchBody => "This browser is signed in to the console. Opening the link ends that session and shows the portal the link gives access to instead. Open it only if you expected it.", "Este navegador tiene una sesión abierta en la consola. Abrir el enlace cierra esa sesión y muestra en su lugar el portal al que da acceso. Ábralo solo si lo esperaba.";
    PortalSwitchOpen => "Open the link", "Abrir el enlace";
    PortalSwitchKeep => "Keep my session", "Mantener mi sesión";
    ErrPortalExpired => "This portal link has expired. Ask for a new one.", "Este enlace al portal caducó. Pida uno nuevo.";
    ErrPortalRevoked => "This portal link has been revoked. Ask for a new one.", "Este enlace al portal fue revocado. Pida uno nuevo.";
    ErrPortalUsedUp => "This portal link has been opened as many times as it may be. Ask for a new one.", "Este enlace al portal ya se abrió todas las veces permitidas. Pida uno nuevo.";
    ErrPortalInvalid => "This portal link is not valid. Check that it was copied whole.", "Este enlace al portal no es válido. Compruebe que se copió completo.";
    ErrOperatorOnly => "Only operators may open this page.", "Solo los operadores pueden abrir esta página.";
    ErrNoTenant => "Choose a tenant first.", "Elija primero una cuenta.";
    ErrTenantDeleted => "This tenant has been deleted.", "Esta cuenta fue eliminada.";
    ErrTooManyKeys => "This tenant already holds the most keys allowed; revoke one first.", "Esta cuenta ya tiene el máximo de claves permitido; revoque una primero.";
    ErrTooLarge => "The form is too large.", "El formulario es demasiado grande.";
    ErrTooMany => "Too many requests. Wait a few minutes and try again.", "Demasiadas peticiones. Espere unos minutos y vuelva a intentarlo.";
    ErrInvalid => "Some values are not valid.", "Algunos valores no son válidos.";
    ErrBadRequest => "The request could not be processed.", "No se pudo procesar la petición.";
    ErrTimeout => "It took too long. Try again.", "Tardó demasiado. Inténtelo de nuevo.";
    // Validation reasons, by rule.
    VLength => "must have between {0} and {1} characters (it has {2})", "debe tener entre {0} y {1} caracteres (tiene {2})";
    VHttps => "must use https:// (plain http:// only for allowed private hosts)", "debe usar https:// (http:// solo para hosts privados permitidos)";
    VNotUrl => "is not a valid URL", "no es una URL válida";
    VControl => "must not contain control characters", "no debe contener caracteres de control";
    VSpaces => "must not start or end with spaces", "no debe empezar ni terminar con espacios";
    VUserInfo => "must not contain user:password@; use custom headers for credentials", "no debe contener usuario:contraseña@; use cabeceras personalizadas para credenciales";
    VPrivate => "points to a private or local address, which is not allowed", "apunta a una dirección privada o local, lo que no está permitido";
    VHost => "must name a host", "debe indicar un host";
    VPort => "uses port 0; use a port from 1 to 65535", "usa el puerto 0; use un puerto del 1 al 65535";
    VRequired => "is required", "es obligatorio";
    VEmpty => "must not be empty", "no debe estar vacío";
    VWhsec => "a secret starting with whsec_ must continue with base64", "un secreto que empieza por whsec_ debe continuar en base64";
    VEventName => "has an event name that is not valid (ASCII letters, digits and _ in dot-separated segments such as invoice.created; a wildcard only as .* at the end, or * alone)", "tiene un nombre de evento no válido (letras ASCII, dígitos y _ en segmentos separados por puntos, como invoice.created; un comodín solo como .* al final, o * solo)";
    VAtLeastOneEvent => "must list at least one event name, resource.* wildcard or *", "debe incluir al menos un nombre de evento, un comodín recurso.* o *";
    VAtMostEntries => "must list at most {0} entries", "debe incluir como máximo {0} elementos";
    VMaxChars => "must be at most {0} characters", "debe tener como máximo {0} caracteres";
    VRateLimit => "must be a whole number of attempts per second, 1–{0}, or empty for none", "debe ser un número entero de intentos por segundo, de 1 a {0}, o vacío para no limitar";
    VOther => "is not valid", "no es válido";
    VDate => "must be a date and time such as 2026-12-03T10:30", "debe ser una fecha y hora como 2026-12-03T10:30";
    VHeader => "has a header that is not allowed or not valid", "tiene una cabecera no permitida o no válida";
    VRange => "is out of the allowed range", "está fuera del rango permitido";
    VNotFoundSub => "names a subscription that was not found", "nombra una suscripción que no se encontró";
    // Field names in messages.
    FUrl => "URL", "URL";
    FSecret => "Secret", "Secreto";
    FEvents => "Events", "Eventos";
    FDescription => "Description", "Descripción";
    FHeaders => "Custom headers", "Cabeceras personalizadas";
    FScheme => "Signature scheme", "Esquema de firma";
    FName => "Name", "Nombre";
    FSince => "Since", "Desde";
    FEvent => "Event", "Evento";
    FExpires => "Valid for", "Válido durante";
    FFilter => "Subscriptions", "Suscripciones";
    FRateLimit => "Rate limit", "Límite de envíos";
}

/// Replaces `{0}`, `{1}`… with `args`.
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = template.to_string();
    for (i, a) in args.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), a);
    }
    out
}

/// The translated message for an application error code.
pub fn error_message(locale: Locale, code: &str) -> &'static str {
    let m = match code {
        "csrf" => M::ErrCsrf,
        "read_only" => M::ErrReadOnly,
        "not_found" | "nothing_found" => M::ErrNotFound,
        "page_not_found" => M::ErrPageNotFound,
        "tenant_changed" => M::ErrTenantChanged,
        "changed_meanwhile" => M::ErrChangedMeanwhile,
        "stale_form" => M::ErrStaleForm,
        "create_not_allowed" => M::ErrCreateNotAllowed,
        "action_only" => M::ErrActionOnly,
        "duplicate_subscription" => M::ErrDuplicate,
        "subscription_limit_reached" => M::ErrLimit,
        "already_delivered" => M::ErrAlreadyDelivered,
        "attempt_due" => M::ErrAttemptDue,
        "subscription_inactive" => M::ErrSubscriptionInactive,
        "subscription_deleted" => M::ErrSubscriptionDeleted,
        "concurrent_modification" | "delivery_conflict" | "portal_link_conflict" => M::ErrConflict,
        "unavailable" | "outcome_unknown" => M::ErrUnavailable,
        "internal_error" => M::ErrInternal,
        "portal_link_expired" => M::ErrPortalExpired,
        "portal_link_revoked" => M::ErrPortalRevoked,
        "portal_link_used_up" => M::ErrPortalUsedUp,
        "portal_link_invalid" => M::ErrPortalInvalid,
        "operator_only" => M::ErrOperatorOnly,
        "no_tenant_selected" => M::ErrNoTenant,
        "tenant_deleted" => M::ErrTenantDeleted,
        "too_many_keys" => M::ErrTooManyKeys,
        "payload_too_large" => M::ErrTooLarge,
        "too_many_requests" => M::ErrTooMany,
        "validation_error" | "invalid_id" | "invalid_query" => M::ErrInvalid,
        "request_timeout" => M::ErrTimeout,
        _ => M::ErrBadRequest,
    };
    m.text(locale)
}

fn field_name(field: &str) -> Option<M> {
    Some(match field {
        "url" => M::FUrl,
        "secret" => M::FSecret,
        "events" => M::FEvents,
        "description" => M::FDescription,
        "headers" => M::FHeaders,
        "signature_scheme" => M::FScheme,
        "name" => M::FName,
        "since" | "until" => M::FSince,
        "event" => M::FEvent,
        "expires_in" => M::FExpires,
        "subscription_filter" => M::FFilter,
        "rate_limit" => M::FRateLimit,
        _ => return None,
    })
}

/// The first three numbers in `s`.
fn numbers(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .take(3)
        .collect()
}

/// A validation error as a sentence in `locale`: in English the API's own
/// message; in Spanish the rule it broke, translated.
pub fn field_error(locale: Locale, e: &ValidationError) -> String {
    let r = e.reason.as_str();
    // English reasons are shown as the API words them, except those that
    // name a server setting: tenants and their customers cannot change it.
    if locale == Locale::En && !r.contains("HOOKLINE_") {
        return e.to_string();
    }
    let field = e.field.split(['[', '.']).next().unwrap_or(&e.field);
    let n = numbers(r);
    let rule = if r.starts_with("must be between") || r.starts_with("must be at most") {
        match (n.as_slice(), r.contains("characters")) {
            ([a, b, c], _) => fill(M::VLength.text(locale), &[a, b, c]),
            ([max, ..], true) => fill(M::VMaxChars.text(locale), &[max]),
            _ => M::VRange.text(locale).to_string(),
        }
    } else if r.starts_with("must list at least one") {
        M::VAtLeastOneEvent.text(locale).to_string()
    } else if r.starts_with("must list at most") {
        match n.first() {
            Some(max) => fill(M::VAtMostEntries.text(locale), &[max]),
            None => M::VRange.text(locale).to_string(),
        }
    } else if field == "rate_limit" {
        // "…attempts per second, 1–1000…": the limit is the last number.
        match n.last() {
            Some(max) => fill(M::VRateLimit.text(locale), &[max]),
            None => M::VOther.text(locale).to_string(),
        }
    } else if r.contains("https://") && r.starts_with("must use") {
        M::VHttps.text(locale).to_string()
    } else if r.contains("is not a valid URL") {
        M::VNotUrl.text(locale).to_string()
    } else if r.contains("control characters") {
        M::VControl.text(locale).to_string()
    } else if r.contains("spaces") {
        M::VSpaces.text(locale).to_string()
    } else if r.contains("user-info") {
        M::VUserInfo.text(locale).to_string()
    } else if r.contains("private")
        || r.contains("loopback")
        || r.contains("not a public")
        || r.contains("HOOKLINE_ALLOW_PRIVATE_TARGETS")
    {
        M::VPrivate.text(locale).to_string()
    } else if r.contains("must name a host") {
        M::VHost.text(locale).to_string()
    } else if r.contains("port 0") {
        M::VPort.text(locale).to_string()
    } else if r == "is required" || r.starts_with("is required") {
        M::VRequired.text(locale).to_string()
    } else if r.contains("must not be empty") {
        M::VEmpty.text(locale).to_string()
    } else if r.contains("whsec_") {
        M::VWhsec.text(locale).to_string()
    } else if r.contains("date and time") || r.contains("RFC 3339") {
        M::VDate.text(locale).to_string()
    } else if field == "events" || field == "event" {
        M::VEventName.text(locale).to_string()
    } else if field == "headers" {
        M::VHeader.text(locale).to_string()
    } else if r.contains("was not found") {
        M::VNotFoundSub.text(locale).to_string()
    } else {
        M::VOther.text(locale).to_string()
    };
    match field_name(field) {
        Some(f) => format!("{}: {rule}", f.text(locale)),
        None => format!("{}: {rule}", e.field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages_and_they_differ_where_words_do() {
        for m in M::ALL {
            assert!(!m.text(Locale::En).is_empty(), "{m:?}");
            assert!(!m.text(Locale::Es).is_empty(), "{m:?}");
        }
        assert_ne!(M::SignIn.text(Locale::En), M::SignIn.text(Locale::Es));
    }

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(Locale::negotiate("es-EC,es;q=0.9,en;q=0.8"), Locale::Es);
        assert_eq!(Locale::negotiate("en-US,es;q=0.5"), Locale::En);
        assert_eq!(Locale::negotiate("fr-FR, es;q=0.7"), Locale::Es);
        assert_eq!(Locale::negotiate("de"), Locale::En);
        assert_eq!(Locale::negotiate(""), Locale::En);
    }

    #[test]
    fn validation_reasons_are_translated() {
        let e = ValidationError::new("secret", "must be between 8 and 500 characters (got 3)");
        assert_eq!(field_error(Locale::En, &e), e.to_string());
        assert_eq!(
            field_error(Locale::Es, &e),
            "Secreto: debe tener entre 8 y 500 caracteres (tiene 3)"
        );
        let e = ValidationError::new("url", "must use https:// (got 'ftp:')");
        assert!(field_error(Locale::Es, &e).starts_with("URL: debe usar https://"));
        // The domain's own reasons, each to its own rule.
        let es = |field: &str, reason: &str| {
            field_error(Locale::Es, &ValidationError::new(field, reason))
        };
        assert_eq!(
            es(
                "events",
                "must list at least one event name, 'resource.*' wildcard or '*'"
            ),
            "Eventos: debe incluir al menos un nombre de evento, un comodín recurso.* o *"
        );
        assert_eq!(
            es("events", "must list at most 100 entries"),
            "Eventos: debe incluir como máximo 100 elementos"
        );
        assert_eq!(
            es("description", "must be at most 500 characters (got 501)"),
            "Descripción: debe tener como máximo 500 caracteres"
        );
        assert!(es(
            "rate_limit",
            "must be a whole number of attempts per second, 1–10000, or null for none"
        )
        .starts_with(
            "Límite de envíos: debe ser un número entero de intentos por segundo, de 1 a 10000"
        ));
        assert!(es(
            "events[2]",
            "'<b>.x' is not a valid event name: use ASCII letters"
        )
        .starts_with("Eventos: tiene un nombre de evento no válido (letras ASCII"));
        assert!(es("headers.X Bad", "is not a valid header name")
            .starts_with("Cabeceras personalizadas: "));
    }
}
